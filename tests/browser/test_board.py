"""The activity board in real browsers, through nginx: live.js, the bell, reconnects, shared tabs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.stack import Stack
from tests.browser.test_demo_page import log_in
from tests.support.metrics import scrape_now

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def new_page(
    browser: Browser, contexts: list[BrowserContext], viewport: dict[str, int] | None = None
) -> Page:
    context = browser.new_context(viewport=viewport or {"width": 1000, "height": 800})
    contexts.append(context)
    return context.new_page()


def open_board(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.nginx.url}/board/")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)


def publish_item(stack: Stack, text: str) -> None:
    item = {
        "id": f"t-{uuid.uuid4().hex[:8]}",
        "author": "test",
        "text": text,
        "created": "2026-01-01T12:00:00Z",
    }
    stack.django.manage("publish", "public.board", json.dumps(item), "--event", "board.item")


def sse_connections(stack: Stack) -> float:
    return scrape_now(f"{stack.sse.url}/metrics", "sse_connections")


def test_a_posted_item_appears_on_another_open_page_within_a_second(
    stack: Stack, browser: Browser, contexts: list[BrowserContext], artifacts: Path
) -> None:
    alice = new_page(browser, contexts)
    log_in(alice, stack, "alice", "/board/")
    open_board(alice, stack)
    watcher = new_page(browser, contexts, PHONE)
    open_board(watcher, stack)

    text = f"fresh coffee {uuid.uuid4().hex[:6]}"
    alice.fill("#board-form input[name=text]", text)
    alice.click("#board-form button[type=submit]")
    posted = time.monotonic()
    expect(watcher.locator("#board li").first).to_contain_text(text, timeout=1000)
    assert time.monotonic() - posted < 1.0
    expect(alice.locator("#board li").first).to_contain_text(text)
    expect(watcher.locator("#listener-count")).not_to_have_text("0", timeout=5000)
    alice.screenshot(path=artifacts / "board-desktop.png", full_page=True)
    watcher.screenshot(path=artifacts / "board-phone.png", full_page=True)


def test_a_notification_reaches_only_the_mentioned_users_bell(
    stack: Stack, browser: Browser, contexts: list[BrowserContext], artifacts: Path
) -> None:
    alice, bob = new_page(browser, contexts), new_page(browser, contexts)
    log_in(alice, stack, "alice", "/board/")
    log_in(bob, stack, "bob", "/board/")
    open_board(alice, stack)
    open_board(bob, stack)

    text = f"lunch? @bob {uuid.uuid4().hex[:6]}"
    alice.fill("#board-form input[name=text]", text)
    alice.click("#board-form button[type=submit]")
    expect(bob.locator("#bell-count")).to_have_text("1", timeout=2000)
    bob.click("#bell summary")
    expect(bob.locator("#notifications li").first).to_contain_text(f"alice mentioned you: {text}")
    bob.screenshot(path=artifacts / "board-bell.png")
    # Alice saw her own post on the board, and nothing in her bell.
    expect(alice.locator("#board li").first).to_contain_text(text)
    expect(alice.locator("#bell-count")).to_be_hidden()


def test_the_page_reconnects_after_the_sse_service_restarts_and_catches_up(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = new_page(browser, contexts)
    open_board(page, stack)
    assert stack.sse.process is not None
    missed = f"published while the service was down {uuid.uuid4().hex[:6]}"
    stack.sse.process.kill()
    try:
        expect(page.locator("#state")).to_have_attribute("data-state", "reconnecting", timeout=5000)
        publish_item(stack, missed)
    finally:
        stack.sse.start()  # the stack is shared by the whole session: never leave it down
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=15000)
    expect(page.locator("#board li").first).to_contain_text(missed, timeout=2000)
    publish_item(stack, "and live again")
    expect(page.locator("#board li").first).to_contain_text("and live again", timeout=2000)


def test_tabs_of_one_browser_share_one_connection_and_take_over_from_a_closed_leader(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    first = new_page(browser, contexts)
    open_board(first, stack)
    time.sleep(0.5)
    with_one_tab = sse_connections(stack)
    second = first.context.new_page()
    open_board(second, stack)
    assert first.evaluate("window.live.leader") is True
    assert second.evaluate("window.live.leader") is False
    time.sleep(1)
    assert sse_connections(stack) <= with_one_tab

    publish_item(stack, "to both tabs")
    expect(first.locator("#board li").first).to_contain_text("to both tabs", timeout=2000)
    expect(second.locator("#board li").first).to_contain_text("to both tabs", timeout=2000)

    first.close()
    expect(second.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)
    second.wait_for_function("window.live.leader === true", timeout=5000)
    publish_item(stack, "after the leader left")
    expect(second.locator("#board li").first).to_contain_text("after the leader left", timeout=2000)


def test_a_staff_broadcast_from_the_admin_reaches_every_open_page(
    stack: Stack, browser: Browser, contexts: list[BrowserContext], artifacts: Path
) -> None:
    alice = new_page(browser, contexts)
    log_in(alice, stack, "alice", "/board/")
    text = f"maintenance at noon {uuid.uuid4().hex[:6]}"
    alice.fill("#board-form input[name=text]", text)
    alice.click("#board-form button[type=submit]")
    expect(alice.locator("#board li").first).to_contain_text(text, timeout=2000)
    visitor = new_page(browser, contexts, PHONE)
    open_board(visitor, stack)

    alice.goto(f"{stack.nginx.url}/admin/demo/boarditem/")
    alice.locator("#result_list tbody tr").filter(has_text=text).locator(
        "input[name=_selected_action]"
    ).check()
    alice.select_option("select[name=action]", "broadcast")
    alice.click("button[name=index]")
    expect(visitor.locator("#announcement")).to_contain_text(text, timeout=2000)
    visitor.screenshot(path=artifacts / "board-announcement-phone.png", full_page=True)


def test_logging_out_elsewhere_closes_the_private_stream_for_good(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    bob = new_page(browser, contexts)
    log_in(bob, stack, "bob", "/board/")
    open_board(bob, stack)
    other = bob.context.new_page()
    other.goto(f"{stack.nginx.url}/")
    other.click("#account button[type=submit]")
    # The service closes the revoked stream; live.js asks for a new ticket, is refused, and stops.
    expect(bob.locator("#state")).to_have_attribute("data-state", "closed", timeout=10000)


def test_without_web_locks_tabs_elect_a_leader_with_local_storage(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    first = new_page(browser, contexts)
    first.context.add_init_script("Object.defineProperty(navigator, 'locks', {value: undefined})")
    open_board(first, stack)
    second = first.context.new_page()
    open_board(second, stack)
    assert [first.evaluate("window.live.leader"), second.evaluate("window.live.leader")] == [True, False]
    publish_item(stack, "heartbeat-led")
    expect(second.locator("#board li").first).to_contain_text("heartbeat-led", timeout=2000)
    first.close()
    second.wait_for_function("window.live.leader === true", timeout=8000)
    publish_item(stack, "after the heartbeat stopped")
    expect(second.locator("#board li").first).to_contain_text("after the heartbeat stopped", timeout=3000)
