"""What a person sees: the demo page, through nginx, in a real browser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.stack import Stack

pytestmark = pytest.mark.browser

# Made by `manage.py create_demo_users`, which devstack runs after migrating.
DEMO_PASSWORD = "sse-demo"


def log_in(page: Page, stack: Stack, username: str, next_path: str = "/") -> None:
    page.goto(f"{stack.nginx.url}/accounts/login/?next={next_path}")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#username")).to_have_text(username)


def test_event_published_with_manage_py_appears_within_a_second(
    stack: Stack, page: Page, artifacts: Path
) -> None:
    page.goto(f"{stack.nginx.url}/")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)

    event_id = stack.django.manage(
        "publish", "public.demo", json.dumps({"text": "hello, browser"})
    ).stdout.strip()
    published = time.monotonic()
    newest = page.locator("#events li").first
    expect(newest).to_contain_text("hello, browser", timeout=1000)
    assert time.monotonic() - published < 1.0
    expect(newest).to_contain_text(event_id)
    page.screenshot(path=artifacts / "demo-page.png", full_page=True)


def test_the_publish_form_delivers_to_the_same_page(stack: Stack, page: Page) -> None:
    log_in(page, stack, "alice", "/%3Fchannel%3Dpublic.demo.form")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)
    page.fill("#publish-form textarea", '{"from": "the form"}')
    page.fill("#publish-form input[name=channel]", "public.demo.form")
    page.fill("#publish-form input[name=event]", "notice")
    page.click("#publish-form button[type=submit]")
    newest = page.locator("#events li").first
    expect(newest).to_contain_text("the form", timeout=2000)
    expect(newest).to_contain_text("notice")


def test_a_logged_in_user_sees_their_private_channel_until_they_log_out(
    stack: Stack, page: Page, artifacts: Path
) -> None:
    log_in(page, stack, "bob")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)
    channel = page.locator("#channels").inner_text().split(", ")[-1]
    assert channel.startswith("user.")

    stack.django.manage("publish", channel, json.dumps({"text": "just for bob"}))
    newest = page.locator("#events li").first
    expect(newest).to_contain_text("just for bob", timeout=2000)
    expect(newest.locator(".channel")).to_have_text(channel)
    page.screenshot(path=artifacts / "demo-page-private.png", full_page=True)

    # Logging out in another tab revokes the ticket: this page's stream ends, and a new ticket is refused.
    other = page.context.new_page()
    other.goto(f"{stack.nginx.url}/")
    other.click("#account button[type=submit]")
    expect(other.locator("#account a")).to_have_text("Log in")
    expect(page.locator("#state")).to_have_attribute("data-state", "closed", timeout=10000)
    expect(page.locator("#state")).to_contain_text(channel)
