"""The htmx board (`/board/htmx/`) in Chromium, through nginx: fragments rendered by Django, swapped in
by htmx's SSE extension, with tickets for the private channel got, renewed and replaced by
htmx-stream.js."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from devstack.stack import Stack
from tests.browser.test_board import new_page
from tests.browser.test_demo_page import log_in

pytestmark = pytest.mark.browser

BOARD = "/board/htmx/"
STREAM = "[data-sse-push-connect]"


def open_board(page: Page, stack: Stack) -> None:
    page.goto(stack.nginx.url + BOARD)
    expect(page.locator(STREAM)).to_have_attribute("data-sse-push-state", "open", timeout=5000)


def post(page: Page, text: str) -> None:
    page.fill("#board-form input[name=text]", text)
    page.click("#board-form button[type=submit]")


def ticket_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.method == "POST" and "/live/ticket" in r.url else None)
    return seen


def test_a_post_reaches_other_htmx_pages_as_a_whole_fragment(
    stack: Stack, browser: Browser, contexts: list[BrowserContext], artifacts: Path
) -> None:
    """The item's fragment is three lines of HTML: it arrives in three `data:` lines, and the page gets
    it whole (author, text and time in one new list item)."""
    alice, watcher = new_page(browser, contexts), new_page(browser, contexts)
    log_in(alice, stack, "alice", BOARD)
    open_board(alice, stack)
    open_board(watcher, stack)

    text = f"htmx says hi {uuid.uuid4().hex[:6]}"
    post(alice, text)
    newest = watcher.locator("#board li").first
    expect(newest.locator(".text")).to_have_text(text, timeout=2000)
    expect(newest.locator(".author")).to_have_text("alice")
    expect(newest.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    expect(alice.locator("#board li").first.locator(".text")).to_have_text(text)
    expect(alice.locator("#board-form input[name=text]")).to_have_value("")  # the form reset itself
    watcher.screenshot(path=artifacts / "board-htmx.png", full_page=True)


def test_a_notification_fragment_reaches_only_the_mentioned_users_private_channel(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    alice, bob = new_page(browser, contexts), new_page(browser, contexts)
    log_in(alice, stack, "alice", BOARD)
    log_in(bob, stack, "bob", BOARD)
    open_board(alice, stack)
    open_board(bob, stack)

    text = f"htmx lunch? @bob {uuid.uuid4().hex[:6]}"
    post(alice, text)
    expect(bob.locator("#notifications li").first).to_have_text(f"alice mentioned you: {text}", timeout=2000)
    expect(alice.locator("#board li").first.locator(".text")).to_have_text(text)
    expect(alice.locator("#notifications li", has_text=text)).to_have_count(0)


def notify_bob(stack: Stack, text: str, *, revoke_first: bool = False) -> None:
    revoke = "from django_sse_push.tickets import revoke_user_tickets\nrevoke_user_tickets(bob)\n"
    stack.django.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from demo.models import Notification\n"
        "bob = User.objects.get(username='bob')\n"
        + (revoke if revoke_first else "")
        + f"Notification.objects.create(recipient=bob, text={text!r})\n",
    )


def test_a_stream_whose_ticket_is_gone_reconnects_with_a_fresh_one_and_misses_nothing(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """Revoking bob's tickets closes his stream; the browser's own reconnect then shows the old ticket
    and gets a 401, which closes the EventSource for good. htmx-stream.js gets a new ticket, htmx
    opens a new EventSource from the last event the page got, and the notification published
    meanwhile arrives, once, with nothing before it again."""
    bob = new_page(browser, contexts)
    log_in(bob, stack, "bob", BOARD)
    tickets = ticket_requests(bob)
    open_board(bob, stack)
    opened = len(tickets)  # 1, and maybe the login redirect's page's, if it asked after the listener came
    assert opened >= 1
    before = f"before the ticket was gone {uuid.uuid4().hex[:6]}"
    notify_bob(stack, before)
    expect(bob.locator("#notifications li", has_text=before)).to_have_count(1, timeout=2000)

    meanwhile = f"while the ticket was gone {uuid.uuid4().hex[:6]}"
    notify_bob(stack, meanwhile, revoke_first=True)
    expect(bob.locator("#notifications li", has_text=meanwhile)).to_have_count(1, timeout=10_000)
    expect(bob.locator(STREAM)).to_have_attribute("data-sse-push-state", "open")
    assert len(tickets) > opened
    bob.wait_for_timeout(500)
    expect(bob.locator("#notifications li", has_text=meanwhile)).to_have_count(1)
    expect(bob.locator("#notifications li", has_text=before)).to_have_count(1)


def test_the_ticket_is_renewed_before_it_expires(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    bob = new_page(browser, contexts)
    log_in(bob, stack, "bob", BOARD)
    bob.clock.install()
    tickets = ticket_requests(bob)
    open_board(bob, stack)
    opened = len(tickets)
    # SSE_TICKET_TTL_SECONDS is 300: renewed at 80 %, after 240 s.
    bob.clock.run_for(239_000)
    assert len(tickets) == opened
    with bob.expect_request(lambda r: r.method == "POST" and "/live/ticket" in r.url) as renewal:
        bob.clock.run_for(2_000)
    assert renewal.value.response() is not None and renewal.value.response().status == 200  # type: ignore[union-attr]


def test_logging_out_elsewhere_closes_the_htmx_stream_for_good(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    bob = new_page(browser, contexts)
    log_in(bob, stack, "bob", BOARD)
    open_board(bob, stack)
    other = bob.context.new_page()
    other.goto(stack.nginx.url + BOARD)
    other.click("#account button[type=submit]")
    # The service closes the revoked stream, the reconnect gets a 401, the new ticket a 403: closed.
    expect(bob.locator(STREAM)).to_have_attribute("data-sse-push-state", "closed", timeout=10_000)
    expect(bob.locator(STREAM)).not_to_have_attribute("sse-connect", re.compile(".*"))
