"""POST /live/ticket, what it stores in Redis, and revocation."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import httpx
import pytest
import redis
from django.contrib.auth import get_user_model
from django.db import connections
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from devstack.services import KEY_PREFIX, RedisServer, SseService
from devstack.tickets import ticket_key
from django_sse_push import keys
from django_sse_push._redis import get_client
from django_sse_push.exceptions import TicketBackendError
from django_sse_push.tickets import Ticket, issue_ticket, revoke_user_tickets
from tests.integration.redis_proxy import DelayingProxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob() -> Any:
    return get_user_model().objects.create_user("bob", password="bob-password")


@pytest.fixture
def as_alice(alice: Any) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def _stored(redis_client: redis.Redis, prefix: str, token: str) -> tuple[dict[str, Any], int]:
    key = ticket_key(token, prefix)
    raw = redis_client.get(key)
    assert raw is not None, "no ticket stored under the token's hash"
    return json.loads(raw), int(redis_client.ttl(key))


def test_a_user_gets_a_ticket_for_their_channel_in_json_and_in_a_cookie(
    as_alice: Client, alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    channels = [f"user.{alice.pk}", "public.news"]
    response = as_alice.post("/live/ticket", {"channel": channels})

    assert response.status_code == 200
    body = response.json()
    assert body["channels"] == channels
    assert body["expires_in"] == 300
    token = body["ticket"]
    assert len(token) == 43
    cookie = response.cookies["sse_ticket"]
    assert cookie.value == token
    assert cookie["path"] == "/sse/"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 300
    assert "no-store" in response["Cache-Control"]

    stored, ttl = _stored(redis_client, key_prefix, token)
    # The session by its hash only: its logout refuses the ticket, and Redis never holds the key.
    session = hashlib.sha256(as_alice.session.session_key.encode()).hexdigest()
    assert stored == {"user": str(alice.pk), "channels": channels, "session": session}
    assert 290 <= ttl <= 300


def test_redis_never_holds_the_token_itself(
    as_alice: Client, alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    token = as_alice.post("/live/ticket", {"channel": f"user.{alice.pk}"}).json()["ticket"]

    for key in redis_client.keys(f"{key_prefix}*"):
        assert token.encode() not in key
        kind = redis_client.type(key)
        values = [redis_client.get(key)] if kind == b"string" else redis_client.zrange(key, 0, -1)
        assert all(token.encode() not in value for value in values)


def test_the_ticket_cookie_is_secure_on_https(alice: Any, settings: Settings) -> None:
    settings.SESSION_COOKIE_SECURE = False
    client = Client()
    client.force_login(alice)

    plain = client.post("/live/ticket", {"channel": "public.x"})
    tls = client.post("/live/ticket", {"channel": "public.x"}, secure=True)

    assert plain.cookies["sse_ticket"]["secure"] == ""
    assert tls.cookies["sse_ticket"]["secure"] is True


def test_the_ticket_ttl_is_a_setting(
    as_alice: Client, settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings.SSE_TICKET_TTL_SECONDS = 42
    body = as_alice.post("/live/ticket", {"channel": "public.x"}).json()

    assert body["expires_in"] == 42
    assert 40 <= _stored(redis_client, key_prefix, body["ticket"])[1] <= 42


def test_anonymous_tickets_for_public_channels_store_nothing(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Anonymous visitors got a ticket stored in Redis for every request, with no limit, although
    public channels need none: anyone could fill Redis by asking again and again."""
    for _ in range(20):
        response = client.post("/live/ticket", {"channel": "public.news"})
        assert response.status_code == 200
        assert response.json() == {"ticket": None, "expires_in": 300, "channels": ["public.news"]}

    assert "sse_ticket" not in response.cookies
    assert redis_client.keys(f"{key_prefix}:*") == []


def test_asking_for_another_users_channel_is_a_403_naming_it_and_stores_nothing(
    as_alice: Client, alice: Any, bob: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    channels = [f"user.{alice.pk}", f"user.{bob.pk}", "staff.alerts"]
    response = as_alice.post("/live/ticket", {"channel": channels})

    assert response.status_code == 403
    assert response.json()["channels"] == [f"user.{bob.pk}", "staff.alerts"]
    assert "sse_ticket" not in response.cookies
    assert redis_client.keys(f"{key_prefix}*") == []


def test_anonymous_visitors_get_no_ticket_for_a_users_channel(client: Client, alice: Any) -> None:
    response = client.post("/live/ticket", {"channel": f"user.{alice.pk}"})

    assert response.status_code == 403
    assert response.json() == {
        "error": "not allowed to read these channels",
        "channels": [f"user.{alice.pk}"],
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "no channel given"),
        ({"channel": ["ok", "not ok"]}, "invalid channel names"),
        ({"channel": [f"public.{i}" for i in range(65)]}, "at most 64 channels"),
    ],
)
def test_bad_requests_are_a_400_saying_why(as_alice: Client, form: dict[str, Any], message: str) -> None:
    response = as_alice.post("/live/ticket", form)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_only_post_with_a_csrf_token(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get("/live/ticket").status_code == 405
    assert client.post("/live/ticket", {"channel": "public.x"}).status_code == 403
    client.get("/")  # sets the CSRF cookie, as the demo page does
    token = client.cookies["csrftoken"].value
    ok = client.post("/live/ticket", {"channel": "public.x"}, HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200


def test_redis_down_is_a_503(as_alice: Client, settings: Settings, unreachable_redis_url: str) -> None:
    settings.SSE_REDIS_URL = unreachable_redis_url

    response = as_alice.post("/live/ticket", {"channel": "public.x"})

    assert response.status_code == 503
    assert "retry later" in response.json()["error"]


def test_revoking_deletes_every_ticket_of_the_user_and_tells_the_sse_service(
    as_alice: Client, alice: Any, bob: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    tokens = [
        as_alice.post("/live/ticket", {"channel": f"user.{alice.pk}"}).json()["ticket"] for _ in range(3)
    ]
    as_bob = Client()
    as_bob.force_login(bob)
    bobs = as_bob.post("/live/ticket", {"channel": f"user.{bob.pk}"}).json()["ticket"]

    with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(keys.control_channel(key_prefix))
        assert pubsub.get_message(timeout=5) is None
        assert revoke_user_tickets(alice) == 3
        message = pubsub.get_message(timeout=5)

    assert message is not None and message["data"] == f"revoke-user {alice.pk}".encode()
    for token in tokens:
        assert redis_client.get(ticket_key(token, key_prefix)) is None
    assert redis_client.exists(keys.user_tickets_key(key_prefix, str(alice.pk))) == 0
    assert _stored(redis_client, key_prefix, bobs)[0]["user"] == str(bob.pk)


def test_a_ticket_issued_while_revoking_does_not_outlive_the_revocation(
    alice: Any, redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revocation read the user's ticket set, then deleted the tickets it had read and the whole set:
    a ticket issued in between stayed valid, and forgotten, until it expired."""
    issue_ticket(alice, [f"user.{alice.pk}"])
    client = get_client()
    read_set = client.zrange
    issued_meanwhile: list[Ticket] = []

    def read_then_issue(*args: Any, **kwargs: Any) -> Any:
        found = read_set(*args, **kwargs)
        if not issued_meanwhile:
            issued_meanwhile.append(issue_ticket(alice, [f"user.{alice.pk}"]))
        return found

    monkeypatch.setattr(client, "zrange", read_then_issue)
    assert revoke_user_tickets(alice) == 2

    assert redis_client.get(ticket_key(issued_meanwhile[0].token, key_prefix)) is None
    assert redis_client.exists(keys.user_tickets_key(key_prefix, str(alice.pk))) == 0


def test_logging_out_revokes_the_users_tickets(
    alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    client = Client()
    assert client.login(username="alice", password="alice-password")
    token = client.post("/live/ticket", {"channel": f"user.{alice.pk}"}).json()["ticket"]

    assert client.post("/accounts/logout/").status_code == 302

    assert redis_client.get(ticket_key(token, key_prefix)) is None


def test_logout_still_works_when_redis_is_down(
    as_alice: Client, settings: Settings, unreachable_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SSE_REDIS_URL = unreachable_redis_url

    assert as_alice.post("/accounts/logout/").status_code == 302
    assert "not revoked at logout" in caplog.text
    with pytest.raises(TicketBackendError):
        revoke_user_tickets(get_user_model().objects.get(username="alice"))


def test_a_redis_url_redis_py_cannot_read_makes_the_ticket_view_a_503_and_logout_a_redirect(
    as_alice: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis URL redis-py refuses (a port that is not a number) raised `ValueError` where the client
    was made, past the views' handling of Redis errors: under gunicorn, which runs no system checks,
    `POST /live/ticket` and logging out were 500s. The setting is now met as Redis being away: the
    documented 503 that live.js retries, and a logout that still logs the user out."""
    settings.SSE_REDIS_URL = "redis://127.0.0.1:63a9/0"

    response = as_alice.post("/live/ticket", {"channel": "public.x"})
    assert response.status_code == 503
    assert "retry later" in response.json()["error"]

    assert as_alice.post("/accounts/logout/").status_code == 302
    assert "Redis setting is unusable" in caplog.text


def test_the_users_ticket_set_forgets_expired_tickets(
    as_alice: Client, alice: Any, settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    tickets = keys.user_tickets_key(key_prefix, str(alice.pk))
    as_alice.post("/live/ticket", {"channel": "public.x"})
    redis_client.zadd(tickets, {"0" * 64: 1.0})  # expired long ago

    as_alice.post("/live/ticket", {"channel": "public.x"})

    assert redis_client.zcard(tickets) == 2
    assert redis_client.zscore(tickets, "0" * 64) is None


@pytest.mark.django_db(transaction=True)
def test_a_ticket_stored_after_its_sessions_logout_cannot_open_a_stream(
    alice: Any, settings: Settings, redis_server: RedisServer, sse_service: SseService
) -> None:
    """A ticket request authenticated before logout stored its ticket after the revocation had
    deleted the user's tickets (here its write reaches Redis 1.5 s late): nothing recorded the
    logout, so the ticket opened the user's private channel for its whole TTL. Now the logout marks
    its session ended, and the SSE service refuses a ticket of that session whenever it was stored."""
    settings.SSE_KEY_PREFIX = KEY_PREFIX
    asking, leaving = Client(), Client()
    asking.force_login(alice)
    leaving.cookies = asking.cookies
    channel = f"user.{alice.pk}"
    answers: list[HttpResponse] = []

    def ask() -> None:
        try:
            answers.append(asking.post("/live/ticket", {"channel": channel}))
        finally:
            connections.close_all()

    with DelayingProxy(redis_server.port, b":ticket:", 1.5, requests=True) as proxy:
        settings.SSE_REDIS_URL = proxy.url
        asked = threading.Thread(target=ask)
        asked.start()
        assert proxy.delayed.wait(5)
        assert leaving.post("/accounts/logout/").status_code == 302
        asked.join(10)
    [answer] = answers
    assert answer.status_code == 200

    url, ticket = f"{sse_service.url}/sse/{channel}", answer.json()["ticket"]
    with httpx.stream("GET", url, params={"ticket": ticket}, timeout=5) as response:
        assert response.status_code == 401
        assert b"its session logged out" in response.read()
