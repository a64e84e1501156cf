"""Pages built from what `{% live_stream %}` renders, served at the stack's origin, for live.js tests.

The tag is rendered by the stack's Django (`manage.py shell`), so a page carries the start position
the tag really gives; Playwright serves it at a path of nginx's origin, where live.js, the stream and
the ticket URL are. The page records every event live.js hands it and every state it reports.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Page

from devstack.stack import Stack

# The test pages' path: nothing else is served there.
PAGE_PATH = "/live-test/"
_SCRIPT_TAG = re.compile(r'<script src="([^"]+)"></script>')
# Handlers a page adds once live.js has made `window.live`.
_RECORD = """
window.got = []; window.states = [];
live.on("*", (data, meta) => got.push({channel: meta.channel, id: meta.id, data}));
live.onState((state) => states.push(state));
"""


def render_live_stream(stack: Stack, *channels: str, redis_down: bool = False) -> str:
    """What `{% live_stream channels %}` renders for an anonymous visitor; with `redis_down`, as
    while Redis does not answer (the tag then gives no start position)."""
    template = "{% load sse_push %}{% live_stream " + " ".join(json.dumps(c) for c in channels) + " %}"
    code = f"from django.template import Context, Template\nhtml = Template({template!r}).render(Context())\n"
    if redis_down:
        code = (
            "from django.test import override_settings\n"
            "with override_settings(SSE_REDIS_URL='redis://127.0.0.1:1/0'):\n"
            + "".join(f"    {line}\n" for line in code.splitlines())
        )
    return stack.django.manage("shell", "-v", "0", "-c", code + "print(html)").stdout


def open_live_page(page: Page, stack: Stack, rendered: str, *, start: bool = True) -> None:
    """Opens a page holding `rendered`; its live.js runs now, or when `start_live` is called."""
    script = _SCRIPT_TAG.search(rendered)
    assert script, f"no live.js in {rendered!r}"
    body = _SCRIPT_TAG.sub("", rendered)
    url = stack.nginx.url + PAGE_PATH
    page.route(
        url,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<!doctype html><html><body data-live="{script[1]}">{body}</body></html>',
        ),
    )
    page.goto(url)
    if start:
        start_live(page)


def start_live(page: Page) -> None:
    """Loads live.js into the page, as its `<script>` would, and records what it hands the page."""
    page.evaluate(
        """(record) => new Promise((loaded) => {
            const script = document.createElement("script");
            script.src = document.body.dataset.live;
            script.onload = () => { new Function(record)(); loaded(); };
            document.body.append(script);
        })""",
        _RECORD,
    )


def wait_for_state(page: Page, state: str, timeout: float = 10_000) -> None:
    page.wait_for_function(
        "(state) => window.live && window.live.state === state", arg=state, timeout=timeout
    )


def received(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("window.got")
    return events


def wait_for_data(page: Page, data: list[Any], timeout: float = 10_000) -> None:
    """Waits until the page has received each of `data` (the caller checks order and count)."""
    page.wait_for_function(
        "(want) => window.got && want.every("
        "(d) => got.some((e) => JSON.stringify(e.data) === JSON.stringify(d)))",
        arg=data,
        timeout=timeout,
    )
