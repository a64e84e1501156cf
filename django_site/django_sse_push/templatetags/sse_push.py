"""A page's live updates in one tag: `{% load sse_push %}`, then one of

- `{% live_stream "public.board" user=True %}`: renders the stream's options as JSON and loads
  live.js, which opens the stream as `window.live`; the page then adds handlers:
  `live.on("board.item", (data, meta) => ...)`.
- `{% htmx_stream "public.board" user=True %}...{% endhtmx_stream %}`: for htmx's SSE extension. Wraps
  the block in `<div hx-ext="sse">` whose stream the `sse-swap="<event>"` elements inside it swap
  from, and loads htmx-stream.js, which gets the ticket before connecting, renews it, and resumes
  after htmx replaces a closed EventSource. The page loads htmx and its SSE extension itself.

`user=True` adds the logged-in user's private channel `user.<pk>`. A ticket URL and the CSRF token
are included when any channel is private. Both start the stream at each channel's newest event as
the page is rendered, so what is published in between is replayed, not missed.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join, json_script
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
    request = context.get("request")
    names = _channels(request, channels, user)
    if not names:
        return SafeString("")
    options: dict[str, Any] = {"channels": names, "url": SSE_PATH}
    position = _newest_positions(names)
    if position:
        options["lastEventId"] = position
    options.update(_ticket_options(request, names))
    return format_html(
        '{}<script src="{}"></script>', json_script(options, "live-stream"), static("sse_push/live.js")
    )


@register.simple_block_tag(takes_context=True)
def htmx_stream(context: template.Context, content: str, *channels: str, user: bool = False) -> SafeString:
    request = context.get("request")
    names = _channels(request, channels, user)
    if not names:
        return SafeString(content)
    query = [("channel", name) for name in names]
    position = _newest_positions(names)
    if position:
        query.append(("lastEventId", position))
    ticket = _ticket_options(request, names)
    return format_html(
        '<div hx-ext="sse" data-sse-push-connect="{}"{}>{}</div><script src="{}"></script>',
        f"{SSE_PATH}?{urlencode(query)}",
        format_html_join(
            "",
            ' data-sse-push-{}="{}"',
            [("ticket-url", ticket["ticketUrl"]), ("csrf-token", ticket["csrfToken"])] if ticket else [],
        ),
        content,
        static("sse_push/htmx-stream.js"),
    )


def _channels(request: HttpRequest | None, channels: tuple[str, ...], user: bool) -> list[str]:
    """The channels named, less empty ones (a variable the context does not set), and `user.<pk>`."""
    names = [name for name in channels if name]
    if user and request is not None and request.user.is_authenticated:
        names.append(f"user.{request.user.pk}")
    return list(dict.fromkeys(names))


def _ticket_options(request: HttpRequest | None, channels: list[str]) -> dict[str, str]:
    """Where a page with private channels gets its ticket, and the CSRF token to ask with."""
    if all(is_public(name) for name in channels):
        return {}
    return {"ticketUrl": reverse("sse_push:ticket"), "csrfToken": get_token(request) if request else ""}


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
