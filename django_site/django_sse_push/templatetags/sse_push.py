"""`{% load sse_push %}{% live_stream "public.board" user=True %}`: a page's live updates in one line.

Renders the stream's options as JSON and loads live.js, which opens the stream as `window.live`;
the page then adds handlers: `live.on("board.item", (data, meta) => ...)`. `user=True` adds the
logged-in user's private channel `user.<pk>`. A ticket URL and the CSRF token are included when
any channel is private.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, get_client
from django_sse_push.conf import push_settings
from django_sse_push.permissions import is_public

register = template.Library()
logger = logging.getLogger(__name__)

SSE_PATH = "/sse/"  # nginx routes it to the SSE service


@register.simple_tag(takes_context=True)
def live_stream(context: template.Context, *channels: str, user: bool = False) -> SafeString:
    names = list(channels)
    request = context.get("request")
    if user and request is not None and request.user.is_authenticated:
        names.append(f"user.{request.user.pk}")
    names = list(dict.fromkeys(names))
    if not names:
        return SafeString("")
    options: dict[str, Any] = {"channels": names, "url": SSE_PATH}
    position = _newest_positions(names)
    if position:
        # Events published between this render and the stream's start are replayed, not missed.
        options["lastEventId"] = position
    if not all(is_public(name) for name in names):
        options["ticketUrl"] = reverse("sse_push:ticket")
        options["csrfToken"] = get_token(request) if request is not None else ""
    return format_html(
        '{}<script src="{}"></script>', json_script(options, "live-stream"), static("sse_push/live.js")
    )


def _newest_positions(channels: list[str]) -> str:
    """Each channel's newest event id, as an event id of the wire contract (`<channel>/<id>,...`),
    or "" if Redis is down (then the stream starts live)."""
    prefix: str = push_settings().KEY_PREFIX
    try:
        with get_client().pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.xrevrange(keys.stream_key(prefix, channel), count=1)
            tops = pipe.execute()
    except REDIS_ERRORS:
        logger.warning("no start position for the stream: Redis did not answer")
        return ""
    return ",".join(
        f"{channel}/{top[0][0].decode() if top else '0-0'}"
        for channel, top in zip(channels, tops, strict=True)
    )
