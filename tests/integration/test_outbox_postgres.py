"""The outbox on PostgreSQL with real relay processes: two at once, one SIGKILLed mid-batch, and Redis
restarted under a batch. Each channel's events must reach Redis, and a follower, exactly once in order.

The backlog is what an outage leaves: events committed while Redis was out of the site's reach.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import PostgresServer
from devstack.processes import free_port
from devstack.services import OutboxRelay
from devstack.stack import Stack
from tests.conftest import TEST_SSE_ENV
from tests.support.board import following, queue_in_outbox
from tests.support.metrics import scrape
from tests.support.sse import Event

PER_CHANNEL = 400
SSE_ENV = {**TEST_SSE_ENV, "SSE_RETRY_MS": "100"}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    django_env = {"DATABASE_URL": postgres.url, "SSE_OUTBOX_POLL_SECONDS": "0.1"}
    built = Stack(tmp_path_factory.mktemp("outbox-pg"), sse_env=SSE_ENV, django_env=django_env)
    # Redis keeps what it was sent across a restart (the restart test), as in production.
    built.redis.persistence = True
    started = built.start()
    yield started
    started.stop()


@pytest.fixture
def backlog(stack: Stack) -> dict[str, int]:
    """Three channels' events waiting in the outbox, the relay stopped meanwhile."""
    stack.relay.stop()
    channels = {f"public.pg-{uuid.uuid4().hex[:8]}-{n}": PER_CHANNEL for n in range(3)}
    queue_in_outbox(stack, channels)
    return channels


def pending_rows(postgres: PostgresServer) -> int:
    with psycopg.connect(postgres.url) as connection:
        row = connection.execute("SELECT count(*) FROM django_sse_push_outboxevent").fetchone()
    assert row is not None
    return int(row[0])


def in_redis(stack: Stack, channels: dict[str, int]) -> dict[str, list[int]]:
    with stack.redis.client() as client:
        return {
            channel: [json.loads(fields[b"data"]) for _, fields in client.xrange(f"sse:{{{channel}}}:events")]
            for channel in channels
        }


def sent_count(stack: Stack, channels: dict[str, int]) -> int:
    return sum(map(len, in_redis(stack, channels).values()))


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def assert_exactly_once_in_order(stack: Stack, channels: dict[str, int]) -> None:
    assert in_redis(stack, channels) == {channel: list(range(count)) for channel, count in channels.items()}


def test_two_relays_at_once_share_the_work_without_sending_anything_twice(
    stack: Stack, postgres: PostgresServer, backlog: dict[str, int], tmp_path: Path
) -> None:
    second = OutboxRelay(tmp_path, stack.django.env, free_port(), name="relay-2")
    relays = [stack.relay.start(), second.start()]
    try:
        wait_for(lambda: pending_rows(postgres) == 0, 60, "the outbox to empty")
        sent = [
            asyncio.run(scrape(relay.metrics_url, 'sse_outbox_events_sent_total{database="default"}'))
            for relay in relays
        ]
        duplicates = [
            asyncio.run(scrape(relay.metrics_url, 'sse_outbox_duplicates_total{database="default"}'))
            for relay in relays
        ]
    finally:
        second.stop()
    assert_exactly_once_in_order(stack, backlog)
    # Each channel had one owner at a time: no event was sent by both.
    assert sum(sent) == sum(backlog.values()) and duplicates == [0, 0]


def test_a_relay_killed_mid_batch_and_restarted_duplicates_nothing(
    stack: Stack, postgres: PostgresServer, backlog: dict[str, int]
) -> None:
    total = sum(backlog.values())
    for _ in range(5):
        before = sent_count(stack, backlog)
        stack.relay.start()
        wait_for(lambda before=before: sent_count(stack, backlog) > before, 30, "a batch to start")
        assert stack.relay.process is not None
        stack.relay.process.kill()
        # Sent but still in the outbox: the killed batch's transaction rolled back its deletions.
        if sent_count(stack, backlog) + pending_rows(postgres) > total:
            break
    else:
        pytest.fail("never caught the relay in the middle of a batch")

    stack.relay.start()
    wait_for(lambda: pending_rows(postgres) == 0, 60, "the outbox to empty")

    assert_exactly_once_in_order(stack, backlog)
    assert asyncio.run(scrape(stack.relay.metrics_url, 'sse_outbox_duplicates_total{database="default"}')) > 0


async def test_redis_restarted_under_a_batch_loses_nothing_a_follower_sees(
    stack: Stack, postgres: PostgresServer, backlog: dict[str, int]
) -> None:
    watched = next(iter(backlog))

    def all_of_them(events: list[Event]) -> bool:
        return len(events) >= backlog[watched]

    follower = await following(f"{stack.nginx.url}/sse/{watched}", all_of_them)
    stack.relay.start()
    await asyncio.to_thread(wait_for, lambda: bool(in_redis(stack, backlog)[watched]), 30, "a batch to start")
    await asyncio.to_thread(stack.redis.stop)
    await asyncio.to_thread(stack.redis.start)
    await asyncio.to_thread(wait_for, lambda: pending_rows(postgres) == 0, 60, "the outbox to empty")
    followed = await follower

    # The restart did fall in the middle: some sends failed and were retried.
    assert await scrape(stack.relay.metrics_url, 'sse_outbox_send_retries_total{database="default"}') > 0
    assert_exactly_once_in_order(stack, backlog)
    assert not followed.timed_out, followed
    assert [json.loads(event.data) for event in followed.events] == list(range(backlog[watched]))
