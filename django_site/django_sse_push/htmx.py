"""HTML fragments for htmx pages: render a template and publish the HTML as the event's data.

htmx's SSE extension (`hx-ext="sse"`, `sse-swap="<event>"`) swaps an event's data into the page as it
is, so the data here is the rendered HTML, sent as text (`as_text=True`), not JSON. A fragment over
several lines arrives whole: the SSE service writes one `data:` line per line, and the browser's
EventSource joins them with "\\n" before htmx sees the text (a "\\r\\n" arrives as "\\n").

A fragment goes to everyone listening on the channel, so it is rendered without a request: nothing
of the user whose action published it (a CSRF token, their name from the request's context
processors) can leak into other people's pages. Put what the fragment shows in `context`.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from django_sse_push.publish import publish, publish_on_commit

__all__ = ["publish_fragment", "render_fragment"]


def render_fragment(template_name: str, context: dict[str, Any] | None = None) -> str:
    """The template rendered for every listener alike, without leading and trailing whitespace."""
    return render_to_string(template_name, context).strip()


def publish_fragment(
    channel: str,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    event: str,
    on_commit: bool = True,
    using: str | None = None,
) -> str | None:
    """Render `template_name` with `context` and publish the HTML on `channel` as `event`, the name
    the page's `sse-swap` waits for.

    By default it is sent once the current transaction commits (nothing on rollback), and None is
    returned; with `on_commit=False` it is sent now and the event id returned. Rendering and
    validation happen now either way, so a template error or bad input raises here. Raises what
    `publish()` raises, PayloadNotSerializableError for a fragment that renders empty.
    """
    html = render_fragment(template_name, context)
    if on_commit:
        publish_on_commit(channel, html, event=event, using=using, as_text=True)
        return None
    return publish(channel, html, event=event, as_text=True)
