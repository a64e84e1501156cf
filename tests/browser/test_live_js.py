"""live.js in Chromium through nginx: every event reaches every tab exactly once after its render."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, BrowserContext

from devstack.stack import Stack
from tests.browser.live_page import (
    open_live_page,
    received,
    render_live_stream,
    start_live,
    wait_for_data,
    wait_for_state,
)
from tests.support.publish import publish

pytestmark = pytest.mark.browser


def new_channel(length: int = 0) -> str:
    name = f"public.live-{uuid.uuid4().hex[:12]}"
    return (name + "-" + "x" * length)[: max(length, len(name))] if length else name


def test_a_follower_tab_gets_what_was_published_between_its_render_and_its_joining(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Regression: a tab joining another tab's shared connection only heard what the leader
    rebroadcast from then on; events published between its page's render and its joining the
    BroadcastChannel never reached it (only a leader resumed from its rendered position)."""
    channel = new_channel()
    redis = stack.redis.client()
    context = browser.new_context()
    contexts.append(context)
    leader = context.new_page()
    open_live_page(leader, stack, render_live_stream(stack, channel))
    wait_for_state(leader, "open")
    publish(redis, channel, '"before the follower rendered"')
    wait_for_data(leader, ["before the follower rendered"])

    follower = context.new_page()
    open_live_page(follower, stack, render_live_stream(stack, channel), start=False)
    publish(redis, channel, '"between render and joining"')
    wait_for_data(leader, ["between render and joining"])
    start_live(follower)
    wait_for_state(follower, "open")
    assert follower.evaluate("window.live.leader") is False
    publish(redis, channel, '"after joining"')

    wait_for_data(follower, ["between render and joining", "after joining"])
    wait_for_data(leader, ["after joining"])
    assert [e["data"] for e in received(follower)] == ["between render and joining", "after joining"]
    assert [e["data"] for e in received(leader)] == [
        "before the follower rendered",
        "between render and joining",
        "after joining",
    ]


def test_a_page_rendered_while_redis_is_down_resumes_from_where_its_stream_started(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Regression: the tag renders no start position while Redis is down, and live.js reconnected
    with its own last event id, empty until a first event arrived: the position the service's
    opening block gave it was dropped, and a stream that broke before its first event started
    again at the newest event, losing what was published meanwhile."""
    channel = new_channel()
    redis = stack.redis.client()
    publish(redis, channel, '"before the page"')
    rendered = render_live_stream(stack, channel, redis_down=True)
    assert "lastEventId" not in rendered
    context = browser.new_context()
    contexts.append(context)
    page = context.new_page()
    open_live_page(page, stack, rendered)
    wait_for_state(page, "open")
    assert stack.sse.process is not None
    stack.sse.process.kill()
    try:
        wait_for_state(page, "reconnecting")
        missed = [publish(redis, channel, f'"missed {n}"') for n in range(3)]
    finally:
        stack.sse.start()  # the stack is shared by the whole session: never leave it down
    wait_for_data(page, ["missed 0", "missed 1", "missed 2"], timeout=20_000)
    publish(redis, channel, '"live again"')
    wait_for_data(page, ["live again"])
    events = received(page)
    assert [e["data"] for e in events] == ["missed 0", "missed 1", "missed 2", "live again"]
    assert [e["id"] for e in events[:3]] == missed


def test_a_page_with_32_channels_of_128_characters_connects_at_once_and_resumes_them_all(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Regression: the resume position went in the URL naming every channel, so with 32 channels of
    128 characters (both the documented maxima) the URL was 8,795 characters: nginx answered 414,
    a page rendered by `{% live_stream %}` was refused on its first connection and a reconnecting
    one stayed `reconnecting`, missing what was published."""
    channels = [new_channel(128) for _ in range(32)]
    assert all(len(channel) == 128 for channel in channels)
    redis = stack.redis.client()
    context = browser.new_context()
    contexts.append(context)
    page = context.new_page()
    open_live_page(page, stack, render_live_stream(stack, *channels))
    wait_for_state(page, "open")
    assert page.evaluate("window.states") == ["connecting", "open"]
    publish(redis, channels[5], '"first"')
    wait_for_data(page, ["first"])

    assert stack.sse.process is not None
    stack.sse.process.kill()
    try:
        wait_for_state(page, "reconnecting")
        missed = [publish(redis, channels[n], f'"missed on {n}"') for n in (0, 5, 31)]
    finally:
        stack.sse.start()
    wait_for_data(page, ["missed on 0", "missed on 5", "missed on 31"], timeout=20_000)
    events = received(page)
    assert [e["data"] for e in events] == ["first", "missed on 0", "missed on 5", "missed on 31"]
    assert [(e["channel"], e["id"]) for e in events[1:]] == list(
        zip([channels[n] for n in (0, 5, 31)], missed, strict=True)
    )


def test_closing_the_leading_tab_reports_closed_and_another_tab_takes_over(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Regression: `live.close()` in the leading tab threw InvalidStateError (it posted its state on
    the BroadcastChannel it had just closed), and `onState` never reported `closed`."""
    channel = new_channel()
    redis = stack.redis.client()
    context = browser.new_context()
    contexts.append(context)
    leader, follower = context.new_page(), context.new_page()
    open_live_page(leader, stack, render_live_stream(stack, channel))
    wait_for_state(leader, "open")
    open_live_page(follower, stack, render_live_stream(stack, channel))
    wait_for_state(follower, "open")
    assert leader.evaluate("window.live.leader") is True

    errors: list[str] = []
    leader.on("pageerror", lambda error: errors.append(str(error)))
    assert leader.evaluate("() => { live.close(); return live.state; }") == "closed"
    assert leader.evaluate("window.states").count("closed") == 1
    assert errors == []

    follower.wait_for_function("window.live.leader === true", timeout=10_000)
    wait_for_state(follower, "open")
    publish(redis, channel, '"after the leader closed"')
    wait_for_data(follower, ["after the leader closed"])
    assert [e["data"] for e in received(leader)] == []
