"""`{% live_stream %}`: the one-line wiring of live.js into a template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from django_sse_push.positions import channel_list_tag
from django_sse_push.templatetags import sse_push

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_log() -> None:
    """Each test is a process seeing the project's mistakes for the first time."""
    sse_push._logged.clear()


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
    tag = channel_list_tag(["public.board", "public.quiet"])
    assert found["lastEventId"] == f"public.board/{event_id},~{tag},1:0-0"


def test_rewind_asks_the_service_for_the_last_events_instead_of_a_position() -> None:
    from django_sse_push.publish import publish

    publish("public.board", {"n": 1})
    found = options(render('{% live_stream "public.board" rewind=20 %}', AnonymousUser()))
    assert (found["rewind"], "lastEventId" in found) == (20, False)


@pytest.mark.parametrize("value", ["101", "-1", "'ten'"])
def test_a_rewind_the_service_would_refuse_is_the_templates_mistake(value: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="must be a whole number from 0 to 100"):
        render(f'{{% live_stream "public.board" rewind={value} %}}', AnonymousUser())


def test_the_stream_url_is_a_setting_so_a_page_can_reach_the_service_on_another_origin(
    settings: Settings,
) -> None:
    """The tag wrote `/sse/` into every page: with runserver on one port and the service on another
    (development without nginx) the page retried 404s from runserver and said nothing else.
    SSE_STREAM_URL is where live.js (its `url` option) and htmx-stream.js open the stream."""
    settings.SSE_STREAM_URL = "http://127.0.0.1:8001/sse/"
    assert (
        options(render('{% live_stream "public.board" %}', AnonymousUser()))["url"] == settings.SSE_STREAM_URL
    )
    html = render('{% htmx_stream "public.board.html" %}{% endhtmx_stream %}', AnonymousUser())
    assert 'data-sse-push-connect="http://127.0.0.1:8001/sse/?channel=public.board.html' in html


def mistakes(which: str) -> float:
    sample = REGISTRY.get_sample_value("sse_page_setup_mistakes_total", {"mistake": which})
    return sample or 0.0


def test_a_redis_url_the_client_refuses_renders_the_page_as_if_redis_were_down_and_logs_it_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With SSE_REDIS_URL = "redis://127.0.0.1:63a9/0" every page with the tag was a 500 (redis-py's
    ValueError), under gunicorn, which runs no system checks. The page now renders as it does while
    Redis is down (the stream starts live), and the reason is logged once, naming the check, and
    counted on every page."""
    settings.SSE_REDIS_URL = "redis://127.0.0.1:63a9/0"
    before = mistakes("redis_setting")
    for _ in range(3):
        found = options(render('{% live_stream "public.board" %}', AnonymousUser()))
        assert found == {"channels": ["public.board"], "url": "/sse/"}
    logged = [r.getMessage() for r in caplog.records if "Redis setting is unusable" in r.getMessage()]
    assert len(logged) == 1, logged
    assert "63a9" in logged[0] and "django_sse_push.E001" in logged[0]
    assert mistakes("redis_setting") == before + 3


@pytest.mark.urls("tests.django_site.urls_without_ticket")
def test_a_project_without_the_ticket_url_gets_its_public_channels_and_a_log_line_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Forgetting `include("django_sse_push.urls")` made every page with `user=True` a 500
    (NoReverseMatch) for logged-in users, while anonymous visitors saw nothing wrong. The page now
    streams its public channels, the private ones are left out, and the reason is logged once
    (E011 names it in `manage.py check`)."""
    alice = get_user_model().objects.create_user("no-ticket-url")
    before = mistakes("ticket_url")
    for _ in range(2):
        found = options(render('{% live_stream "public.board" user=True %}', alice))
        assert found["channels"] == ["public.board"] and "ticketUrl" not in found
    logged = [r.getMessage() for r in caplog.records if "ticket URL" in r.getMessage()]
    assert len(logged) == 1, logged
    assert "django_sse_push.E011" in logged[0]
    assert mistakes("ticket_url") == before + 2
