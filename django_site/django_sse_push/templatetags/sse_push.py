"""A page's live updates in one tag: `{% load sse_push %}`, then one of

- `{% live_stream "public.board" user=True %}`: renders the stream's options as JSON and loads
  live.js, which opens the stream as `window.live`; the page then adds handlers:
  `live.on("board.item", (data, meta) => ...)`. With `rewind=20` the stream starts with each
  channel's last 20 events (at most its prefix's `rewind_max`) rather than where the page was rendered.
- `{% htmx_stream "public.board" user=True %}...{% endhtmx_stream %}`: for htmx's SSE extension. Wraps
  the block in `<div hx-ext="sse">` whose stream the `sse-swap="<event>"` elements inside it swap
  from, and loads htmx-stream.js, which gets the ticket before connecting, renews it, and resumes
  after htmx replaces a closed EventSource. The page loads htmx and its SSE extension itself.

`user=True` adds the logged-in user's private channel: `user.<pk>` for live.js, whose events are JSON,
and `user.<pk>.html` for htmx, whose events are HTML fragments (the channels `publish_fragment` is
meant for). A ticket URL and the CSRF token are included when any channel is private. Both open the
stream at SSE_STREAM_URL, and start it at each channel's newest event as the page is rendered, so
what is published in between is replayed, not missed.

A page renders whatever is wrong around it: a Redis that does not answer or a Redis setting the
client refuses (the stream then starts live), a project that did not include the ticket URL (the
private channels are left out). Each such reason is logged once per process; `manage.py check`
names the settings' and URLs' mistakes before the first request (E001, E002, E011).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString
from prometheus_client import Counter

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, UnusableRedisSettingError, get_client
from django_sse_push.conf import push_settings
from django_sse_push.permissions import is_public
from django_sse_push.policies import policy_for
from django_sse_push.positions import event_id
from django_sse_push.urls import TICKET_URL_NAME

register = template.Library()
logger = logging.getLogger(__name__)

HTML_SUFFIX = ".html"  # a user's fragment channel is their JSON channel's name plus this

# The reasons already logged by this process: a mistake in the project's setup would otherwise log
# once per page rendered.
_logged: set[str] = set()


@register.simple_tag(takes_context=True)
def live_stream(context: template.Context, *channels: str, user: bool = False, rewind: int = 0) -> SafeString:
    request = context.get("request")
    names = _channels(request, channels, user)
    ticket = _ticket_options(request, names)
    names = _readable(names, ticket)
    if not names:
        return SafeString("")
    options: dict[str, Any] = {"channels": names, "url": push_settings().STREAM_URL}
    if rewind:
        # The stream starts with each channel's last `rewind` events, read by the service: the page
        # gives no position, which would win over the rewind.
        options["rewind"] = _rewind(rewind, names)
    elif position := _newest_positions(names):
        options["lastEventId"] = position
    options.update(ticket or {})
    return format_html(
        '{}<script src="{}"></script>', json_script(options, "live-stream"), static("sse_push/live.js")
    )


@register.simple_block_tag(takes_context=True)
def htmx_stream(context: template.Context, content: str, *channels: str, user: bool = False) -> SafeString:
    request = context.get("request")
    names = _channels(request, channels, user, suffix=HTML_SUFFIX)
    ticket = _ticket_options(request, names)
    names = _readable(names, ticket)
    if not names:
        return SafeString(content)
    query = [("channel", name) for name in names]
    position = _newest_positions(names)
    if position:
        query.append(("lastEventId", position))
    return format_html(
        '<div hx-ext="sse" data-sse-push-connect="{}"{}>{}</div><script src="{}"></script>',
        f"{push_settings().STREAM_URL}?{urlencode(query)}",
        format_html_join(
            "",
            ' data-sse-push-{}="{}"',
            [("ticket-url", ticket["ticketUrl"]), ("csrf-token", ticket["csrfToken"])] if ticket else [],
        ),
        content,
        static("sse_push/htmx-stream.js"),
    )


def _channels(
    request: HttpRequest | None, channels: tuple[str, ...], user: bool, suffix: str = ""
) -> list[str]:
    """The channels named, less empty ones (a variable the context does not set), and the user's
    `user.<pk>` plus `suffix`."""
    names = [name for name in channels if name]
    if user and request is not None and request.user.is_authenticated:
        names.append(f"user.{request.user.pk}{suffix}")
    return list(dict.fromkeys(names))


def _ticket_options(request: HttpRequest | None, channels: list[str]) -> dict[str, str] | None:
    """Where a page with private channels gets its ticket, and the CSRF token to ask with: {} when
    all are public (and, for a logged-in user, none lists who listens: the ticket says who it is),
    None when the project's urls.py does not include the ticket URL."""
    if all(is_public(name) for name in channels) and not _identified(request, channels):
        return {}
    try:
        url = reverse(TICKET_URL_NAME)
    except NoReverseMatch:
        _setup_mistake(
            "ticket_url",
            "private channels left out of the page's stream: the ticket URL is not in the project's "
            'urls.py; add path("live/", include("django_sse_push.urls")) (django_sse_push.E011)',
        )
        return None
    return {"ticketUrl": url, "csrfToken": get_token(request) if request else ""}


def _identified(request: HttpRequest | None, channels: list[str]) -> bool:
    """Whether the stream should say who listens: a logged-in user on a channel that lists members
    or announces joins and leaves."""
    authenticated = request is not None and request.user.is_authenticated
    return authenticated and any(
        policy_for(name).presence == "who" or policy_for(name).join_leave for name in channels
    )


def _readable(channels: list[str], ticket: dict[str, str] | None) -> list[str]:
    """The channels the page can open: without a ticket URL, the public ones only."""
    return channels if ticket is not None else [name for name in channels if is_public(name)]


def _rewind(rewind: object, channels: list[str]) -> int:
    """`rewind=` as the service will take it: a whole number, at most the largest maximum among the
    channels' policies; anything else is the template's mistake, raised as one."""
    top = max(policy_for(channel).rewind_max for channel in channels)
    if isinstance(rewind, bool) or not isinstance(rewind, int) or not 0 <= rewind <= top:
        raise template.TemplateSyntaxError(
            f"live_stream rewind={rewind!r}: must be a whole number from 0 to {top}, the largest "
            f"rewind_max of {', '.join(channels)} (SSE_CHANNEL_POLICIES)"
        )
    return rewind


def _newest_positions(channels: list[str]) -> str:
    """Each channel's newest event id, as one event id of the wire contract (positions.py), or ""
    if Redis is down or its setting unusable (then the stream starts live)."""
    prefix: str = push_settings().KEY_PREFIX
    try:
        with get_client().pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.xrevrange(keys.stream_key(prefix, channel), count=1)
            tops = pipe.execute()
    except UnusableRedisSettingError as exc:
        _setup_mistake(
            "redis_setting",
            f"no start position for the stream: {exc}; manage.py check names it (django_sse_push.E001, E002)",
        )
        return ""
    except REDIS_ERRORS:
        logger.warning("no start position for the stream: Redis did not answer")
        return ""
    return event_id(
        channels,
        {channel: top[0][0].decode() if top else "0-0" for channel, top in zip(channels, tops, strict=True)},
    )


@cache
def _mistakes_counter() -> Counter:
    """On prometheus_client's default registry, which the site's own metrics view serves, if any."""
    return Counter(
        "sse_page_setup_mistakes",
        "Pages rendered around a mistake in the project's setup, by which: redis_setting or ticket_url",
        ["mistake"],
    )


def _setup_mistake(mistake: str, reason: str) -> None:
    """A mistake in the project's setup that a page met: counted each time, logged the first."""
    _mistakes_counter().labels(mistake).inc()
    if reason not in _logged:
        _logged.add(reason)
        logger.error("%s; logged once per process", reason)
