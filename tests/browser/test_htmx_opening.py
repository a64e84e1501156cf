"""htmx-stream.js and the stream's opening block, in Chromium through nginx."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, Route, expect

from devstack.stack import Stack
from tests.support.publish import publish

pytestmark = pytest.mark.browser

PAGE_PATH = "/htmx-test/"


def render_htmx_stream_while_redis_is_down(stack: Stack, channel: str) -> str:
    """What `{% htmx_stream %}` renders while Redis does not answer: no start position."""
    template = (
        "{% load sse_push %}{% htmx_stream "
        + f'"{channel}"'
        + ' %}<ol sse-swap="item"></ol>{% endhtmx_stream %}'
    )
    code = (
        "from django.template import Context, Template\n"
        "from django.test import override_settings\n"
        "with override_settings(SSE_REDIS_URL='redis://127.0.0.1:1/0'):\n"
        f"    print(Template({template!r}).render(Context()))\n"
    )
    return stack.django.manage("shell", "-v", "0", "-c", code).stdout


def test_a_page_rendered_while_redis_is_down_resumes_from_its_opening_block_after_a_refusal(
    stack: Stack, page: Page
) -> None:
    """htmx-stream.js set `lastEventId` only from events htmx handed it, and htmx does not listen to
    the opening block (`sse.start`): a page rendered without a start position whose EventSource was
    refused before its first event (a 503: htmx then opens a new one from `sse-connect`) started
    again at the newest event, and lost what was published meanwhile."""
    channel = f"public.htmx-{uuid.uuid4().hex[:12]}.html"
    rendered = render_htmx_stream_while_redis_is_down(stack, channel)
    assert "lastEventId" not in rendered
    url = stack.nginx.url + PAGE_PATH
    vendor = f"{stack.nginx.url}/static/demo/vendor"
    page.route(
        url,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<!doctype html><html><head><script src="{vendor}/htmx-2.0.11.min.js"></script>'
            f'<script src="{vendor}/htmx-ext-sse-2.2.4.js"></script></head><body>{rendered}</body></html>',
        ),
    )
    streams: list[str] = []
    refuse = {"next": False}

    def on_stream(route: Route) -> None:
        streams.append(route.request.url)
        if refuse["next"]:
            refuse["next"] = False
            route.fulfill(status=503, body="retry later\n")
        else:
            route.continue_()

    page.route(f"{stack.nginx.url}/sse/**", on_stream)
    page.goto(url)
    stream = page.locator("[data-sse-push-connect]")
    expect(stream).to_have_attribute("data-sse-push-state", "open", timeout=10_000)
    # The next connection is refused: htmx closes this EventSource and opens another from the URL.
    refuse["next"] = True
    redis = stack.redis.client()
    assert stack.sse.process is not None
    stack.sse.process.kill()
    try:
        expect(stream).to_have_attribute("data-sse-push-state", "reconnecting", timeout=10_000)
        publish(redis, channel, "<li>missed</li>", event="item")
    finally:
        stack.sse.start()
    expect(page.locator("ol li")).to_have_text(["missed"], timeout=20_000)
    assert any("lastEventId=" in stream_url for stream_url in streams[1:])
