"""`{% live_stream %}`: the one-line wiring of live.js into a template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

CONFIG_RE = re.compile(r'<script id="live-stream" type="application/json">(.*?)</script>', re.S)


def render(source: str, user: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load sse_push %}" + source).render(Context({"request": request}))


def options(html: str) -> dict[str, Any]:
    match = CONFIG_RE.search(html)
    assert match, html
    return dict(json.loads(match.group(1)))


def test_public_channels_need_no_ticket() -> None:
    html = render('{% live_stream "public.board" "public.news" %}', AnonymousUser())
    found = options(html)
    del found["lastEventId"]
    assert found == {"channels": ["public.board", "public.news"], "url": "/sse/"}
    assert '<script src="/static/sse_push/live.js"></script>' in html


def test_user_adds_the_private_channel_with_a_ticket_url_and_csrf_token() -> None:
    alice = get_user_model().objects.create_user("alice")
    found = options(render('{% live_stream "public.board" user=True %}', alice))
    assert found["channels"] == ["public.board", f"user.{alice.pk}"]
    assert found["ticketUrl"] == "/live/ticket"
    assert found["csrfToken"]


def test_user_is_ignored_for_anonymous_visitors() -> None:
    assert options(render('{% live_stream "public.board" user=True %}', AnonymousUser()))["channels"] == [
        "public.board"
    ]


def test_the_script_is_a_static_file() -> None:
    assert finders.find("sse_push/live.js")


def test_the_stream_starts_from_each_channels_newest_event_so_nothing_published_after_render_is_missed() -> (
    None
):
    from django_sse_push.publish import publish

    event_id = publish("public.board", {"n": 1})
    publish("public.elsewhere", {"n": 2})
    found = options(render('{% live_stream "public.board" "public.quiet" %}', AnonymousUser()))
    # One position per channel (wire contract): a channel without events yet starts before its first.
    assert found["lastEventId"] == f"public.board/{event_id},public.quiet/0-0"
