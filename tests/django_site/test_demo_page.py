"""The demo page at `/`: EventSource wiring, and the publish form (for logged-in users)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import Client
from pytest_django.fixtures import Settings

from django_sse_push import keys

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
DEMO = "public.demo"


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="alice-password")


@pytest.fixture
def logged_in(alice: Any) -> Client:
    """A client logged in as alice that, like a browser, must send CSRF tokens."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


@pytest.fixture
def user_client(alice: Any) -> Client:
    """Logged in as alice, without CSRF checks: for tests about what the form does with its input."""
    client = Client()
    client.force_login(alice)
    return client


def _csrf_token(html: str) -> str:
    match = TOKEN_RE.search(html)
    assert match, "the publish form has no CSRF token"
    return match.group(1)


def test_page_renders_with_the_stream_wiring_and_stable_ids(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-stream-url="/sse/?channel=public.demo"' in html
    assert 'data-ticket-url=""' in html
    assert 'data-event-types="update notice alert"' in html
    for element_id in ("live", "state", "events", "account", "publish-login"):
        assert f'id="{element_id}"' in html
    assert 'id="publish-form"' not in html
    assert '<script src="/static/demo/demo.js" defer></script>' in html
    assert 'href="/static/demo/demo.css"' in html
    assert 'href="/accounts/login/?next=/"' in html


def test_logged_in_user_also_watches_their_private_channel_with_a_ticket(
    logged_in: Client, alice: Any
) -> None:
    html = logged_in.get("/").content.decode()

    assert f'data-stream-url="/sse/?channel=public.demo&amp;channel=user.{alice.pk}"' in html
    assert 'data-ticket-url="/live/ticket"' in html
    assert re.search(r'data-csrf-token="[^"]+"', html)
    assert 'id="username">alice<' in html
    for element_id in ("publish-form", "publish-result"):
        assert f'id="{element_id}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'action="/accounts/logout/"' in html


def test_script_opens_an_event_source_and_listens_for_named_types() -> None:
    path = finders.find("demo/demo.js")
    assert isinstance(path, str)
    script = Path(path).read_text()

    assert "new EventSource(url)" in script
    assert '"X-CSRFToken": root.dataset.csrfToken' in script
    assert "source.onmessage = show" in script
    assert "source.addEventListener(type, show)" in script
    # The event's own channel: the id's first `<channel>/<id>` (wire contract).
    assert 'lastEventId.split(",")[0]' in script


def test_page_watches_the_channels_from_the_query_string(user_client: Client, alice: Any) -> None:
    response = user_client.get("/?channel=orders&channel=news,alerts&channel=orders")

    assert response.status_code == 200
    html = response.content.decode()
    expected = f"/sse/?channel=orders&amp;channel=news&amp;channel=alerts&amp;channel=user.{alice.pk}"
    assert f'data-stream-url="{expected}"' in html
    assert 'value="orders"' in html  # the form publishes to the first watched channel


def test_page_with_an_invalid_channel_is_a_400_that_names_it_and_opens_no_stream(
    client: Client,
) -> None:
    response = client.get("/?channel=ok,not%20ok")

    assert response.status_code == 400
    html = response.content.decode()
    assert "Not a valid channel name: not ok" in html
    assert 'data-stream-url=""' in html


def test_post_without_csrf_token_is_forbidden(
    logged_in: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    response = logged_in.post("/", {"channel": DEMO, "event": "", "data": "{}"})

    assert response.status_code == 403
    assert redis_client.keys(f"{key_prefix}*") == []


def test_anonymous_visitors_cannot_publish(redis_client: redis.Redis, key_prefix: str) -> None:
    client = Client()
    html_answer = client.post("/", {"channel": DEMO, "event": "", "data": "{}"})
    json_answer = client.post(
        "/", {"channel": DEMO, "event": "", "data": "{}"}, HTTP_ACCEPT="application/json"
    )

    assert html_answer.status_code == 403
    assert "Log in to publish." in html_answer.content.decode()
    assert json_answer.status_code == 403
    assert json_answer.json()["errors"]["__all__"][0]["message"] == "Log in to publish."
    assert redis_client.keys(f"{key_prefix}*") == []


def test_users_publish_only_to_channels_they_may_read(
    user_client: Client, alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    own = user_client.post("/", {"channel": f"user.{alice.pk}", "event": "", "data": "1"})
    other = user_client.post("/", {"channel": f"user.{alice.pk + 1}", "event": "", "data": "1"})

    assert own.status_code == 302
    assert other.status_code == 403
    assert "You may publish only to channels you can read." in other.content.decode()
    assert redis_client.keys(keys.stream_key(key_prefix, f"user.{alice.pk + 1}")) == []


def test_form_publishes_then_redirects_back_with_the_id(
    logged_in: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    token = _csrf_token(logged_in.get("/?channel=public.demo").content.decode())

    response = logged_in.post(
        "/?channel=public.demo",
        {"csrfmiddlewaretoken": token, "channel": DEMO, "event": "alert", "data": '{"a": 1}'},
    )

    assert response.status_code == 302
    assert response["Location"] == "/?channel=public.demo"
    [(event_id, fields)] = redis_client.xrange(keys.stream_key(key_prefix, DEMO))
    assert fields == {b"event": b"alert", b"data": b'{"a":1}'}
    page = logged_in.get(response["Location"]).content.decode()
    assert f"Published event {event_id.decode()} to public.demo." in page


def test_form_with_invalid_json_is_a_400_with_the_error(
    user_client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    response = user_client.post("/", {"channel": DEMO, "event": "", "data": "{oops"})

    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode()
    assert redis_client.keys(f"{key_prefix}*") == []


def test_form_with_invalid_channel_or_event_type_is_a_400(user_client: Client) -> None:
    bad_channel = user_client.post("/", {"channel": "no spaces", "event": "", "data": "1"})
    bad_event = user_client.post("/", {"channel": DEMO, "event": "9x", "data": "1"})

    assert bad_channel.status_code == 400
    assert "invalid channel" in bad_channel.content.decode()
    assert bad_event.status_code == 400
    assert "invalid event type" in bad_event.content.decode()


def test_form_with_json_that_cannot_be_republished_is_a_400_not_a_500(user_client: Client) -> None:
    # json.loads accepts both, but neither is valid UTF-8 JSON text to send on.
    for data in ('"\\ud800"', "NaN"):
        response = user_client.post("/", {"channel": DEMO, "event": "", "data": data})
        assert response.status_code == 400, data
        assert "cannot be serialised to JSON" in response.content.decode()


def test_form_with_an_oversized_payload_is_a_400(user_client: Client, settings: Settings) -> None:
    settings.SSE_MAX_PAYLOAD_BYTES = 8

    response = user_client.post("/", {"channel": DEMO, "event": "", "data": '"0123456789"'})

    assert response.status_code == 400
    assert "over the limit of 8" in response.content.decode()


def test_form_when_redis_is_down_is_a_503_with_a_message(
    user_client: Client, settings: Settings, unreachable_redis_url: str
) -> None:
    settings.SSE_REDIS_URL = unreachable_redis_url

    response = user_client.post("/", {"channel": DEMO, "event": "", "data": "1"})

    assert response.status_code == 503
    assert "Could not reach Redis" in response.content.decode()


def test_script_submission_gets_json_back_instead_of_a_redirect(
    user_client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    form = {"channel": DEMO, "event": "", "data": "[1]"}
    ok = user_client.post("/", form, HTTP_ACCEPT="application/json")
    bad = user_client.post("/", {**form, "data": "["}, HTTP_ACCEPT="application/json")

    assert ok.status_code == 200
    [(event_id, _)] = redis_client.xrange(keys.stream_key(key_prefix, DEMO))
    assert ok.json() == {"id": event_id.decode(), "channel": DEMO}
    assert bad.status_code == 400
    assert bad.json()["errors"]["data"][0]["message"].startswith("Not valid JSON")


def test_healthz_answers_ok_even_for_a_host_not_in_allowed_hosts(client: Client) -> None:
    response = client.get("/healthz", HTTP_HOST="web:8000")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert client.get("/", HTTP_HOST="web:8000").status_code == 400
