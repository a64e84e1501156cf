"""HTML fragments for htmx pages: render a template and publish the HTML as the event's data.

htmx's SSE extension (`hx-ext="sse"`, `sse-swap="<event>"`) swaps an event's data into the page as it
is, so the data here is the rendered HTML, sent as text (`as_text=True`), not JSON. A fragment over
several lines arrives whole: the SSE service writes one `data:` line per line, and the browser's
EventSource joins them with "\\n" before htmx sees the text (a "\\r\\n" arrives as "\\n").

A fragment goes to everyone listening on the channel, so it is rendered without a request: nothing
of the user whose action published it (a CSRF token, their name from the request's context
processors) can leak into other people's pages. Put what the fragment shows in `context`.

On Django 6 the template may be a partial of the page's own template, `"board.html#item"` (its
`{% partialdef item %}` block), so a list item is written once, for the page and for the pushes.
"""

from __future__ import annotations

from typing import Any

import django
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from django_sse_push.publish import publish, publish_on_commit

__all__ = ["publish_fragment", "render_fragment"]


def render_fragment(template_name: str, context: dict[str, Any] | None = None) -> str:
    """The template rendered for every listener alike, without leading and trailing whitespace.

    Raises TemplateDoesNotExist naming the Django version for a partial before Django 6, which would
    otherwise look for a file called "board.html#item".
    """
    if "#" in template_name and django.VERSION < (6, 0):
        raise TemplateDoesNotExist(
            f"{template_name!r} names a template partial, which needs Django 6.0 or later"
            f" (this is Django {django.get_version()})"
        )
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
