"""A client that stops reading is cut off, costs bounded memory, slows no one, and loses nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.integration.probes import dechunk, open_stalled_client, read_until_closed, rss_kb, scrape
from tests.support.publish import publish
from tests.support.sse import EventStream, follow, open_stream

EVENTS = 200
PAYLOAD = "x" * 50_000  # 10 MB in all: far more than the socket, transport and backlog can hold


@pytest.fixture
def small_buffer_sse(redis_server: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    env = {"SSE_SEND_BUFFER_BYTES": "262144", "SSE_RETRY_MS": "100"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    yield service
    service.stop()


async def test_a_stalled_client_is_cut_off_and_resumes_without_loss(
    small_buffer_sse: SseService, redis_client: redis.Redis, channel: str
) -> None:
    assert small_buffer_sse.process is not None
    pid = small_buffer_sse.process.pid
    url_path = f"/sse/{channel}"
    stalled = open_stalled_client(small_buffer_sse.port, url_path)
    latencies: list[float] = []
    async with open_stream(small_buffer_sse.url + url_path) as fast:
        rss_before = rss_kb(pid)

        def publish_all() -> list[str]:
            return [
                publish(redis_client, channel, json.dumps({"n": n, "t": time.time(), "pad": PAYLOAD}))
                for n in range(EVENTS)
            ]

        publishing = asyncio.create_task(asyncio.to_thread(publish_all))
        while len(fast.events) < EVENTS:
            seen = len(fast.events)
            await asyncio.wait_for(fast.read_more(), 10)
            now = time.time()
            latencies += [now - json.loads(e.data)["t"] for e in fast.events[seen:]]
        rss_after = rss_kb(pid)
        ids = await publishing

    assert [e.id for e in fast.events] == [f"{channel}/{i}" for i in ids]
    assert max(latencies) < 2.0, f"the reading client was slowed: max latency {max(latencies):.2f}s"
    assert rss_after - rss_before < 64_000, f"RSS grew {rss_after - rss_before} KB"
    assert (await scrape(small_buffer_sse))["sse_slow_consumers_cut_total"] >= 1

    # The stalled client reads what it got before the cut, then reconnects as an EventSource would.
    partial = EventStream.parse(dechunk(await asyncio.to_thread(read_until_closed, stalled, 10)))
    stalled.close()
    assert len(partial.events) < EVENTS
    rest = await follow(
        small_buffer_sse.url + url_path,
        lambda events: len(partial.events) + len(events) >= EVENTS,
        timeout=20,
        last_event_id=partial.last_event_id,
    )
    assert [e.id for e in partial.events + rest.events] == [f"{channel}/{i}" for i in ids]


def stalling_service(redis_server: RedisServer, tmp_path: Path, send_buffer: int) -> Iterator[SseService]:
    """Heartbeats every second: a write that waits 5 s (the send timeout) cuts the stream."""
    env = {"SSE_SEND_BUFFER_BYTES": str(send_buffer), "SSE_HEARTBEAT_SECONDS": "1"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    yield service
    service.stop()


@pytest.fixture
def stalling_sse(redis_server: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    yield from stalling_service(redis_server, tmp_path, 65536)


@pytest.fixture
def roomy_sse(redis_server: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    """A backlog that never fills here: only a write that waits too long can cut a stream."""
    yield from stalling_service(redis_server, tmp_path, 64 << 20)


async def wait_for_cuts(service: SseService, count: float, timeout: float, pid: int) -> int:
    """Waits until `count` streams were cut as slow consumers (or `timeout`); returns the peak RSS in KB."""
    peak = rss_kb(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peak = max(peak, rss_kb(pid))
        if (await scrape(service))["sse_slow_consumers_cut_total"] >= count:
            break
        await asyncio.sleep(0.2)
    return peak


async def test_a_heartbeat_that_cannot_be_written_cuts_a_slow_consumer_without_a_traceback(
    roomy_sse: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Regression: a heartbeat that could not be written to a stalled client escaped as an unhandled
    `SendTimeoutError`: uvicorn logged a traceback per stalled client (a log flood anyone could
    start), the stream was logged as left by its client, and no slow consumer was counted."""
    assert roomy_sse.process is not None
    stalled = open_stalled_client(roomy_sse.port, f"/sse/{channel}")
    async with asyncio.timeout(5):
        while (await scrape(roomy_sse))["sse_connections"] < 1:
            await asyncio.sleep(0.05)
    # Far more than the socket takes, far less than the backlog allows once the socket has paused.
    for n in range(EVENTS):
        publish(redis_client, channel, json.dumps({"n": n, "pad": PAYLOAD}))
    await wait_for_cuts(roomy_sse, 1, 15, roomy_sse.process.pid)
    metrics = await scrape(roomy_sse)
    await asyncio.to_thread(read_until_closed, stalled, 5)  # the server hung up
    stalled.close()
    assert metrics["sse_slow_consumers_cut_total"] == 1
    assert metrics["sse_connections"] == 0
    assert "Traceback" not in roomy_sse.process.log_tail(400)


async def test_history_replay_is_bounded_by_the_send_buffer_and_cuts_a_stalled_client(
    stalling_sse: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Regression: a resuming stream read its whole history in one XRANGE and wrote it as one chunk
    outside the backlog bound, then kept it for the life of the stream. With 9 MB of history, 8 clients
    that never read, resuming from 0-0, grew the service by about 20 MiB each, and none was cut."""
    assert stalling_sse.process is not None
    for n in range(180):
        publish(redis_client, channel, json.dumps({"n": n, "pad": PAYLOAD}))
    pid = stalling_sse.process.pid
    before = rss_kb(pid)
    clients = [
        open_stalled_client(stalling_sse.port, f"/sse/{channel}", f"Last-Event-ID: {channel}/0-0\r\n")
        for _ in range(8)
    ]
    peak = await wait_for_cuts(stalling_sse, 8, 20, pid)
    for client in clients:
        client.close()
    growth_per_client = (peak - before) / 8
    assert growth_per_client < 2048, f"the service grew {growth_per_client:.0f} KB per stalled client"
    assert (await scrape(stalling_sse))["sse_slow_consumers_cut_total"] == 8
