"""The board with the demo's policy table (demo/policies.json) in Chromium: who is viewing, by name
and live, join and leave notices, and a newly opened board filled by the stream's rewind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from devstack.stack import DEMO_POLICIES, Stack
from tests.browser.test_board import new_page, open_board, publish_item
from tests.browser.test_demo_page import log_in
from tests.conftest import TEST_SSE_ENV

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(
        tmp_path_factory.mktemp("presence-stack"), sse_env=TEST_SSE_ENV, channel_policies=DEMO_POLICIES
    ).start()
    yield started
    started.stop()


def test_two_users_see_each_other_viewing_and_a_notice_when_one_leaves(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    alice = new_page(browser, contexts)
    log_in(alice, stack, "alice", "/board/")
    open_board(alice, stack)
    expect(alice.locator("#viewers")).to_have_text("viewing: alice", timeout=10_000)

    bob = new_page(browser, contexts)
    log_in(bob, stack, "bob", "/board/")
    open_board(bob, stack)
    expect(alice.locator("#presence-notice")).to_have_text("bob joined", timeout=10_000)
    expect(alice.locator("#viewers")).to_have_text("viewing: alice, bob", timeout=10_000)
    expect(bob.locator("#viewers")).to_have_text("viewing: alice, bob", timeout=10_000)

    bob.context.close()
    # Gone for the grace (3 x the 0.5 s presence report, rounded to 2 s), then announced.
    expect(alice.locator("#presence-notice")).to_have_text("bob left", timeout=10_000)
    expect(alice.locator("#viewers")).to_have_text("viewing: alice", timeout=10_000)


def test_a_newly_opened_board_shows_the_last_posts_from_the_streams_rewind(
    stack: Stack, browser: Browser, contexts: list[BrowserContext]
) -> None:
    # Published straight to the channel, never saved: only the stream can show them.
    for n in range(25):
        publish_item(stack, f"streamed {n}")
    page = new_page(browser, contexts)
    open_board(page, stack)
    expect(page.locator("#board li").first).to_contain_text("streamed 24", timeout=10_000)
    texts = page.locator("#board li .text").all_inner_texts()
    streamed = [text for text in texts if text.startswith("streamed")]
    assert streamed == [f"streamed {n}" for n in range(24, 4, -1)]
