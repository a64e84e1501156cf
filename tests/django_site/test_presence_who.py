"""Presence with who: names from Django's hook, carried in tickets, listed by the SSE processes in
Redis and read back by `presence.who`, across two replicas; no ghost after a replica is killed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from pytest_django.fixtures import Settings

from devstack.replicas import sse_replicas
from devstack.services import RedisServer, SseService
from django_sse_push.presence import Member, subscriber_count, who
from django_sse_push.tickets import issue_ticket
from tests.conftest import TEST_SSE_ENV
from tests.support.sse import open_stream

# Presence reported every 0.5 s: keys live max(1, round(1.5)) = 2 s past a process's last report.
PRESENCE_TTL = 2
TABLE = {"public.": {"public": True, "presence": "who"}, "public.quiet.": {"public": True}}


@pytest.fixture
def policies(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(TABLE))
    settings.SSE_CHANNEL_POLICIES = str(path)
    return path


@pytest.fixture
def replicas(
    policies: Path, redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> Iterator[list[SseService]]:
    env = {**TEST_SSE_ENV, "SSE_CHANNEL_POLICIES": str(policies), "SSE_KEY_PREFIX": key_prefix}
    services = sse_replicas(tmp_path, redis_server.url, 2, env=env)
    for service in services:
        service.env["SSE_KEY_PREFIX"] = key_prefix
        service.start()
    yield services
    for service in services:
        service.stop()


def _user(username: str, first: str = "", last: str = "") -> Any:
    return get_user_model().objects.create_user(username, password="x", first_name=first, last_name=last)


def _cookie(user: Any, channels: list[str]) -> dict[str, str]:
    return {"Cookie": f"sse_ticket={issue_ticket(user, channels).token}"}


async def _until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Polls without blocking the loop the test's streams are read on."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
def users(db: None) -> dict[str, Any]:
    return {
        "alice": _user("alice", "Alice", "Liddell"),
        "bob": _user("bob"),
        "carol": _user("carol"),
    }


async def test_who_lists_each_user_once_across_replicas_and_never_the_anonymous(
    replicas: list[SseService], users: dict[str, Any]
) -> None:
    alice, bob = users["alice"], users["bob"]
    board, quiet = "public.board", "public.quiet.board"
    one, two = (f"{service.url}/sse/" for service in replicas)
    async with (
        open_stream(f"{one}{board}", headers=_cookie(alice, [board])),
        open_stream(f"{two}{board}", headers=_cookie(alice, [board])),
        open_stream(f"{two}?channel={board}&channel={quiet}", headers=_cookie(bob, [board, quiet])),
        open_stream(f"{one}{board}"),
    ):
        expected = [Member(str(alice.pk), "Alice Liddell"), Member(str(bob.pk), "bob")]
        await _until(
            lambda: who(board) == expected and subscriber_count(board) == 4, "alice, bob, 4 listeners"
        )
        # A prefix whose policy does not list members only counts them.
        assert (who(quiet), subscriber_count(quiet)) == ([], 1)
    await _until(lambda: who(board) == [], "the members to leave")


async def test_a_replica_killed_with_sigkill_leaves_no_ghost_past_the_presence_ttl(
    replicas: list[SseService], users: dict[str, Any]
) -> None:
    carol = users["carol"]
    board = "public.board"
    async with open_stream(f"{replicas[1].url}/sse/{board}", headers=_cookie(carol, [board])):
        await _until(lambda: who(board) == [Member(str(carol.pk), "carol")], "carol listed")
        process = replicas[1].process
        assert process is not None
        process.kill()
        killed = time.monotonic()
        await _until(lambda: who(board) == [], "carol's ghost to expire")
    assert time.monotonic() - killed <= PRESENCE_TTL + 1.5


def raising_display_name(user: Any) -> str:
    raise RuntimeError("the display name service is down")


@pytest.mark.django_db
def test_a_display_name_hook_that_raises_still_issues_the_ticket_without_a_name(
    settings: Settings, redis_client: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SSE_DISPLAY_NAME = f"{__name__}.raising_display_name"
    dave = _user("dave")
    client = Client()
    client.force_login(dave)
    with caplog.at_level(logging.ERROR, logger="django_sse_push.presence"):
        response = client.post("/live/ticket", {"channel": [f"user.{dave.pk}"]})
    assert response.status_code == 200
    stored = json.loads(redis_client.get(f"{key_prefix}:ticket:" + _sha256(response.json()["ticket"])) or "")
    assert (stored["user"], stored["channels"], "name" in stored) == (
        str(dave.pk),
        [f"user.{dave.pk}"],
        False,
    )
    assert "SSE_DISPLAY_NAME" in caplog.text and "the display name service is down" in caplog.text


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
