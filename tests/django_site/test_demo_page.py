"""The demo page at `/`: EventSource wiring, and the publish form."""

from __future__ import annotations

import re
from pathlib import Path

import redis
from django.contrib.staticfiles import finders
from django.test import Client
from pytest_django.fixtures import Settings

from live import keys

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _csrf_token(html: str) -> str:
    match = TOKEN_RE.search(html)
    assert match, "the publish form has no CSRF token"
    return match.group(1)


def test_page_renders_with_the_stream_wiring_and_stable_ids(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-stream-url="/sse/?channel=demo"' in html
    assert 'data-event-types="update notice alert"' in html
    for element_id in ("live", "state", "events", "publish-form", "publish-result"):
        assert f'id="{element_id}"' in html
    assert '<script src="/static/demo/demo.js" defer></script>' in html
    assert 'href="/static/demo/demo.css"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_script_opens_an_event_source_and_listens_for_named_types() -> None:
    path = finders.find("demo/demo.js")
    assert isinstance(path, str)
    script = Path(path).read_text()

    assert "new EventSource(url)" in script
    assert "source.onmessage = show" in script
    assert "source.addEventListener(type, show)" in script
    assert 'lastEventId.lastIndexOf("/")' in script


def test_page_watches_the_channels_from_the_query_string(client: Client) -> None:
    response = client.get("/?channel=orders&channel=news,alerts&channel=orders")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-stream-url="/sse/?channel=orders&amp;channel=news&amp;channel=alerts"' in html
    assert 'value="orders"' in html  # the form publishes to the first watched channel


def test_page_with_an_invalid_channel_is_a_400_that_names_it_and_opens_no_stream(
    client: Client,
) -> None:
    response = client.get("/?channel=ok,not%20ok")

    assert response.status_code == 400
    html = response.content.decode()
    assert "Not a valid channel name: not ok" in html
    assert 'data-stream-url=""' in html


def test_post_without_csrf_token_is_forbidden(redis_client: redis.Redis, key_prefix: str) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post("/", {"channel": "demo", "event": "", "data": "{}"})

    assert response.status_code == 403
    assert redis_client.keys(f"{key_prefix}*") == []


def test_form_publishes_then_redirects_back_with_the_id(redis_client: redis.Redis, key_prefix: str) -> None:
    client = Client(enforce_csrf_checks=True)
    token = _csrf_token(client.get("/?channel=demo").content.decode())

    response = client.post(
        "/?channel=demo",
        {"csrfmiddlewaretoken": token, "channel": "demo", "event": "alert", "data": '{"a": 1}'},
    )

    assert response.status_code == 302
    assert response["Location"] == "/?channel=demo"
    [(event_id, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert fields == {b"event": b"alert", b"data": b'{"a":1}'}
    page = client.get(response["Location"]).content.decode()
    assert f"Published event {event_id.decode()} to demo." in page


def test_form_with_invalid_json_is_a_400_with_the_error(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    response = client.post("/", {"channel": "demo", "event": "", "data": "{oops"})

    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode()
    assert redis_client.keys(f"{key_prefix}*") == []


def test_form_with_invalid_channel_or_event_type_is_a_400(client: Client) -> None:
    bad_channel = client.post("/", {"channel": "no spaces", "event": "", "data": "1"})
    bad_event = client.post("/", {"channel": "demo", "event": "9x", "data": "1"})

    assert bad_channel.status_code == 400
    assert "invalid channel" in bad_channel.content.decode()
    assert bad_event.status_code == 400
    assert "invalid event type" in bad_event.content.decode()


def test_form_with_json_that_cannot_be_republished_is_a_400_not_a_500(client: Client) -> None:
    # json.loads accepts both, but neither is valid UTF-8 JSON text to send on.
    for data in ('"\\ud800"', "NaN"):
        response = client.post("/", {"channel": "demo", "event": "", "data": data})
        assert response.status_code == 400, data
        assert "cannot be serialised to JSON" in response.content.decode()


def test_form_with_an_oversized_payload_is_a_400(client: Client, settings: Settings) -> None:
    settings.SSE_MAX_PAYLOAD_BYTES = 8

    response = client.post("/", {"channel": "demo", "event": "", "data": '"0123456789"'})

    assert response.status_code == 400
    assert "over the limit of 8" in response.content.decode()


def test_form_when_redis_is_down_is_a_503_with_a_message(
    client: Client, settings: Settings, unreachable_redis_url: str
) -> None:
    settings.REDIS_URL = unreachable_redis_url

    response = client.post("/", {"channel": "demo", "event": "", "data": "1"})

    assert response.status_code == 503
    assert "Could not reach Redis" in response.content.decode()


def test_script_submission_gets_json_back_instead_of_a_redirect(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    ok = client.post("/", {"channel": "demo", "event": "", "data": "[1]"}, HTTP_ACCEPT="application/json")
    bad = client.post("/", {"channel": "demo", "event": "", "data": "["}, HTTP_ACCEPT="application/json")

    assert ok.status_code == 200
    [(event_id, _)] = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert ok.json() == {"id": event_id.decode(), "channel": "demo"}
    assert bad.status_code == 400
    assert bad.json()["errors"]["data"][0]["message"].startswith("Not valid JSON")


def test_healthz_answers_ok_even_for_a_host_not_in_allowed_hosts(client: Client) -> None:
    response = client.get("/healthz", HTTP_HOST="web:8000")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert client.get("/", HTTP_HOST="web:8000").status_code == 400
