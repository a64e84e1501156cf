"""Every event exactly once, in order, while the service or Redis is killed, restarted or replaced.

A publisher sends 2,000 events over a few seconds on 3 channels; one client listens to all three on
one connection and follows the EventSource reconnect rules (`tests.support.sse.follow`).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.processes import free_port
from devstack.replicas import nginx_in_front
from devstack.services import Nginx, RedisServer, SseService
from tests.integration.probes import scrape
from tests.support.metrics import scrape_now
from tests.support.publish import ContinuousPublisher, redis_at
from tests.support.sse import Event, Followed, follow

EVENTS = 2000
RATE = 500.0
# Quick reconnects keep the test short; browsers get the default 3 s.
SSE_ENV = {"SSE_RETRY_MS": "100", "SSE_HEARTBEAT_SECONDS": "1", "SSE_SHUTDOWN_GRACE_SECONDS": "2"}


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, free_port(), persistence=True).start()
    yield server
    server.stop()


@pytest.fixture
def channels(channel: str) -> list[str]:
    return [f"{channel}.{n}" for n in range(3)]


def stream_path(channels: list[str]) -> str:
    return "/sse/?" + "&".join(f"channel={c}" for c in channels)


def start_sse(run_dir: Path, redis: RedisServer, name: str = "sse", port: int = 0) -> SseService:
    return SseService(run_dir, redis.url, port or free_port(), env=SSE_ENV, name=name).start()


def start_nginx(run_dir: Path, *services: SseService) -> Nginx:
    return nginx_in_front(run_dir, services).start()


async def listen_while(url: str, publisher: ContinuousPublisher, disrupt: Callable[[], None]) -> Followed:
    """Follows `url` while `publisher` runs and `disrupt()` (blocking) runs in a thread."""
    followed = Followed()
    expected: list[int] = []  # known once the publisher is done

    def received_all(events: list[Event]) -> bool:
        return bool(expected) and len(events) >= expected[0]

    listener = asyncio.create_task(follow(url, received_all, 30, followed=followed))
    # The service answers once its subscription is confirmed: from then on nothing is missed.
    async with asyncio.timeout(5):
        while not followed.connections:
            await asyncio.sleep(0.01)
    publisher.start()
    await asyncio.sleep(1.0)
    await asyncio.to_thread(disrupt)
    await asyncio.to_thread(publisher.join, 20)
    expected.append(sum(map(len, publisher.stream_ids().values())))
    await listener
    return followed


def assert_exactly_once_in_order(followed: Followed, publisher: ContinuousPublisher) -> None:
    assert not followed.timed_out, str(followed)
    assert not publisher.is_alive()
    published = publisher.stream_ids()
    for channel, ids in published.items():
        assert set(publisher.published[channel]) <= set(ids)
        received = [e.stream_id for e in followed.events if e.channel == channel]
        assert received == ids, f"{channel}: {len(received)} received, {len(ids)} in Redis"
    assert len(followed.events) == sum(map(len, published.values())) >= EVENTS


async def test_service_killed_and_restarted(
    persistent_redis: RedisServer, tmp_path: Path, channels: list[str]
) -> None:
    service = start_sse(tmp_path, persistent_redis)
    nginx = start_nginx(tmp_path, service)
    publisher = ContinuousPublisher(redis_at(persistent_redis.port), channels, EVENTS, RATE)

    def kill_and_restart() -> None:
        assert service.process is not None
        service.process.kill()
        service.start()

    try:
        url = nginx.url + stream_path(channels)
        followed = await listen_while(url, publisher, kill_and_restart)
    finally:
        nginx.stop()
        service.stop()
    assert_exactly_once_in_order(followed, publisher)
    assert followed.connections >= 2


async def test_redis_restarted_with_persistence(
    persistent_redis: RedisServer, tmp_path: Path, channels: list[str]
) -> None:
    service = start_sse(tmp_path, persistent_redis)
    publisher = ContinuousPublisher(redis_at(persistent_redis.port), channels, EVENTS, RATE)

    def restart_redis() -> None:
        persistent_redis.stop()
        persistent_redis.start()

    try:
        url = service.url + stream_path(channels)
        followed = await listen_while(url, publisher, restart_redis)
        metrics = await scrape(service)
    finally:
        service.stop()
    assert_exactly_once_in_order(followed, publisher)
    assert followed.connections == 1, "the stream stays open while Redis restarts"
    assert metrics["sse_redis_reconnects_total"] >= 1
    assert metrics["sse_gaps_filled_total"] >= 1


async def test_sigterm_hands_streams_over_to_a_second_instance(
    persistent_redis: RedisServer, tmp_path: Path, channels: list[str]
) -> None:
    first = start_sse(tmp_path, persistent_redis, name="sse-a")
    second = start_sse(tmp_path, persistent_redis, name="sse-b")
    nginx = start_nginx(tmp_path, first, second)
    publisher = ContinuousPublisher(redis_at(persistent_redis.port), channels, EVENTS, RATE)
    terminated: list[SseService] = []

    def terminate_the_serving_instance() -> None:
        serving = next(s for s in (first, second) if scrape_now(f"{s.url}/metrics", "sse_connections") > 0)
        assert serving.process is not None
        serving.process.signal(signal.SIGTERM)
        serving.process.popen.wait(15)  # uvicorn drains, then re-raises SIGTERM to exit
        terminated.append(serving)

    try:
        url = nginx.url + stream_path(channels)
        followed = await listen_while(url, publisher, terminate_the_serving_instance)
    finally:
        nginx.stop()
        first.stop()
        second.stop()
    assert_exactly_once_in_order(followed, publisher)
    assert followed.clean_ends >= 1, "the terminated instance ended its stream cleanly"
    assert followed.errors == 0
    log = terminated[0].process.log_tail(100) if terminated[0].process else ""
    assert "reason=server shutdown" in log
