"""`presence.join` and `presence.leave` on the channel itself, across two replicas behind no proxy:
once per arrival and departure, none for a reconnect within the grace, none past the member limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack import tickets
from devstack.replicas import sse_replicas
from devstack.services import RedisServer, SseService
from tests.conftest import TEST_SSE_ENV
from tests.support.sse import EventStream, open_stream

# TEST_SSE_ENV reports presence every 0.5 s: the grace is its TTL, max(1, round(1.5)) = 2 s.
GRACE = 2.0
TABLE = {
    "public.": {"public": True},
    "public.room.": {"public": True, "join_leave": True, "join_leave_max_members": 2},
}


@pytest.fixture(scope="module")
def replicas(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[SseService]]:
    run_dir = tmp_path_factory.mktemp("join-leave")
    table = Path(run_dir) / "policies.json"
    table.write_text(json.dumps(TABLE))
    env = {**TEST_SSE_ENV, "SSE_CHANNEL_POLICIES": str(table)}
    services = [service.start() for service in sse_replicas(run_dir, redis_server.url, 2, env=env)]
    yield services
    for service in services:
        service.stop()


@pytest.fixture
def room() -> str:
    return f"public.room.{uuid.uuid4().hex[:10]}"


def _as(client: redis.Redis, channel: str, user: str) -> dict[str, str]:
    token = tickets.issue(client, [channel], user=user, name=f"Name of {user}")
    return {"Cookie": f"sse_ticket={token}"}


def _presence(stream: EventStream) -> list[tuple[str, dict[str, str]]]:
    return [(e.event, json.loads(e.data)) for e in stream.events if e.event.startswith("presence.")]


async def test_a_join_and_a_leave_reach_the_other_listeners_once(
    replicas: list[SseService], redis_client: redis.Redis, room: str
) -> None:
    async with open_stream(f"{replicas[0].url}/sse/{room}") as watcher:
        async with open_stream(f"{replicas[1].url}/sse/{room}", headers=_as(redis_client, room, "7")):
            await watcher.wait_for_events(1)
        await watcher.wait_for_events(2, timeout=GRACE + 5)
        await asyncio.sleep(GRACE)
    assert _presence(watcher) == [
        ("presence.join", {"user": "7", "name": "Name of 7"}),
        ("presence.leave", {"user": "7", "name": "Name of 7"}),
    ]


async def test_a_reconnect_to_another_replica_within_the_grace_is_neither_a_leave_nor_a_join(
    replicas: list[SseService], redis_client: redis.Redis, room: str
) -> None:
    async with open_stream(f"{replicas[0].url}/sse/{room}") as watcher:
        async with open_stream(f"{replicas[1].url}/sse/{room}", headers=_as(redis_client, room, "8")):
            await watcher.wait_for_events(1)
        async with open_stream(f"{replicas[0].url}/sse/{room}", headers=_as(redis_client, room, "8")):
            await asyncio.sleep(GRACE * 2)
    assert _presence(watcher) == [("presence.join", {"user": "8", "name": "Name of 8"})]


async def test_past_the_member_limit_only_counts_are_kept(
    replicas: list[SseService], redis_client: redis.Redis, room: str
) -> None:
    async with (
        open_stream(f"{replicas[0].url}/sse/{room}") as watcher,
        open_stream(f"{replicas[0].url}/sse/{room}", headers=_as(redis_client, room, "1")),
        open_stream(f"{replicas[1].url}/sse/{room}", headers=_as(redis_client, room, "2")),
    ):
        await watcher.wait_for_events(2)
        async with open_stream(f"{replicas[1].url}/sse/{room}", headers=_as(redis_client, room, "3")):
            await asyncio.sleep(GRACE)
    joined = sorted(data["user"] for event, data in _presence(watcher) if event == "presence.join")
    assert joined == ["1", "2"]
