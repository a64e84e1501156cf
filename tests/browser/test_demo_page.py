"""What a person sees: the demo page, through nginx, in a real browser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.stack import Stack

pytestmark = pytest.mark.browser


def test_event_published_with_manage_py_appears_within_a_second(
    stack: Stack, page: Page, artifacts: Path
) -> None:
    page.goto(f"{stack.nginx.url}/")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)

    event_id = stack.django.manage("publish", "demo", json.dumps({"text": "hello, browser"})).stdout.strip()
    published = time.monotonic()
    newest = page.locator("#events li").first
    expect(newest).to_contain_text("hello, browser", timeout=1000)
    assert time.monotonic() - published < 1.0
    expect(newest).to_contain_text(event_id)
    page.screenshot(path=artifacts / "demo-page.png", full_page=True)


def test_the_publish_form_delivers_to_the_same_page(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.nginx.url}/?channel=demo.form")
    expect(page.locator("#state")).to_have_attribute("data-state", "open", timeout=5000)
    page.fill("#publish-form textarea", '{"from": "the form"}')
    page.fill("#publish-form input[name=channel]", "demo.form")
    page.fill("#publish-form input[name=event]", "notice")
    page.click("#publish-form button[type=submit]")
    newest = page.locator("#events li").first
    expect(newest).to_contain_text("the form", timeout=2000)
    expect(newest).to_contain_text("notice")
