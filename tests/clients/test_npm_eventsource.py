"""npm's `eventsource` 3 (on eventsource-parser), a real third-party client, through nginx and two
replicas: what a spec-following client that dispatches only blocks with data gets across reconnects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.replicas import nginx_in_front, sse_replicas
from devstack.services import Nginx, RedisServer, SseService
from tests.clients.eventsource import NodeEventSource
from tests.support.publish import publish

# Quick reconnects keep the test short.
SSE_ENV = {"SSE_RETRY_MS": "200", "SSE_HEARTBEAT_SECONDS": "1", "SSE_SHUTDOWN_GRACE_SECONDS": "1"}


@pytest.fixture
def replicas(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[list[SseService], Nginx]]:
    services = [service.start() for service in sse_replicas(tmp_path, redis_server.url, 2, env=SSE_ENV)]
    nginx = nginx_in_front(tmp_path, services).start()
    yield services, nginx
    nginx.stop()
    for service in services:
        service.stop()


def kill_and_restart(services: list[SseService], while_down: object) -> None:
    """SIGKILLs every replica, calls `while_down()`, and starts them again."""
    assert callable(while_down)
    for service in services:
        assert service.process is not None
        service.process.kill()
    try:
        while_down()
    finally:
        for service in services:
            service.start()


def wait_until_open(clients: list[NodeEventSource], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(client.opened for client in clients):
        assert time.monotonic() < deadline, "a client never opened its stream"
        time.sleep(0.05)
    time.sleep(0.5)  # the opening block follows the headers


def test_npm_eventsource_reconnecting_before_its_first_event_loses_nothing(
    replicas: tuple[list[SseService], Nginx], redis_client: redis.Redis
) -> None:
    """Regression: the opening block was `id:` without data. Browsers take it as their last event
    id, but npm's eventsource (eventsource-parser) ignores a block without data, so with both
    replicas killed before the first event its clients reconnected without Last-Event-ID, started
    at the newest event and lost what was published meanwhile."""
    services, nginx = replicas
    channels = [f"public.npm-{uuid.uuid4().hex[:8]}.{n}" for n in range(2)]
    url = f"{nginx.url}/sse/?channel={channels[0]}&channel={channels[1]}"
    clients = [NodeEventSource(url, count=8, seconds=30).start() for _ in range(4)]
    try:
        wait_until_open(clients)
        missed: list[str] = []
        kill_and_restart(
            services,
            lambda: missed.extend(publish(redis_client, channels[n % 2], f'"missed {n}"') for n in range(6)),
        )
        live = [publish(redis_client, channels[n], f'"live {n}"') for n in range(2)]
        statuses = [client.wait() for client in clients]
    finally:
        for client in clients:
            client.stop()
    # In order per channel; across channels, ids (Redis's clock) give only the millisecond.
    sent = list(zip([channels[n % 2] for n in range(6)] + channels, missed + live, strict=True))
    for client, status in zip(clients, statuses, strict=True):
        got = [
            (event["id"].partition("/")[0], event["id"].split(",")[0].partition("/")[2])
            for event in client.events
        ]
        assert status == 0, f"got {got}"
        for channel in channels:
            assert [i for c, i in got if c == channel] == [i for c, i in sent if c == channel]


def test_npm_eventsource_resumes_32_channels_of_128_characters_through_nginx(
    replicas: tuple[list[SseService], Nginx], redis_client: redis.Redis
) -> None:
    """At the documented maxima a plain EventSource resumes by itself: its Last-Event-ID header, with
    the other channels named by index, stays far within nginx's 8 KB."""
    services, nginx = replicas
    stem = f"public.npm-{uuid.uuid4().hex[:8]}"
    channels = [f"{stem}.{n:02d}".ljust(128, "x") for n in range(32)]
    url = f"{nginx.url}/sse/?" + "&".join(f"channel={channel}" for channel in channels)
    client = NodeEventSource(url, count=4, seconds=30).start()
    try:
        wait_until_open([client])
        publish(redis_client, channels[7], '"first"')
        deadline = time.monotonic() + 10
        while not client.events:
            assert time.monotonic() < deadline, "no first event"
            time.sleep(0.05)
        assert len(client.events[0]["id"]) < 1000
        kill_and_restart(
            services, lambda: [publish(redis_client, channels[n], f'"missed on {n}"') for n in (0, 7, 31)]
        )
        status = client.wait()
    finally:
        client.stop()
    assert status == 0
    # One event per channel: across channels, ids (Redis's clock) give only the millisecond.
    got = [event["data"] for event in client.events]
    assert got[0] == '"first"'
    assert sorted(got[1:]) == ['"missed on 0"', '"missed on 31"', '"missed on 7"']
