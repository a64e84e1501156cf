"""What sse-starlette's response did per stream, which the hub now does for all of them at once:
headers, HEAD, heartbeats, noticing a client that left, and ending every stream on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.integration.probes import scrape
from tests.support.sse import open_stream


async def wait_until(service: SseService, name: str, value: float, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while (await scrape(service))[name] != value:
            await asyncio.sleep(0.05)


async def test_a_stream_carries_sse_starlettes_headers(sse_service: SseService, channel: str) -> None:
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        headers = stream.response.headers
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"
    assert headers["connection"] == "keep-alive"


async def test_head_answers_the_headers_and_opens_no_stream(sse_service: SseService, channel: str) -> None:
    async with httpx.AsyncClient(base_url=sse_service.url) as client:
        response = await client.head(f"/sse/{channel}", timeout=3)  # answered, not left streaming
    assert response.status_code == 200
    assert response.headers["x-accel-buffering"] == "no"
    assert response.content == b""


async def test_heartbeats_come_every_interval_on_an_idle_stream(
    sse_service: SseService, channel: str
) -> None:
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        # One a second here (SSE_HEARTBEAT_SECONDS=1).
        await stream.read_until(lambda s: s.comments.count("ping") >= 3, timeout=8)
    assert stream.events == []


async def test_a_client_that_leaves_is_noticed_and_its_channel_unsubscribed(
    sse_service: SseService, channel: str
) -> None:
    before = await scrape(sse_service)
    async with open_stream(f"{sse_service.url}/sse/{channel}"):
        await wait_until(sse_service, "sse_connections", before["sse_connections"] + 1)
    await wait_until(sse_service, "sse_connections", before["sse_connections"])
    await wait_until(sse_service, "sse_channels_subscribed", before["sse_channels_subscribed"])


async def test_sigterm_ends_every_stream_at_once_with_a_reconnect_hint(
    redis_server: RedisServer, tmp_path: Path, channel: str
) -> None:
    env = {"SSE_RETRY_MS": "250", "SSE_HEARTBEAT_SECONDS": "15"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    assert service.process is not None
    try:
        async with (
            open_stream(f"{service.url}/sse/{channel}") as one,
            open_stream(f"{service.url}/sse/?channel={channel}&channel={channel}.b") as two,
        ):
            service.process.signal(signal.SIGTERM)
            started = time.monotonic()
            for stream in (one, two):
                await stream.read_to_end(timeout=3)
                assert stream.raw.endswith(b"retry: 250\n: reconnect\n\n")
            assert time.monotonic() - started < 2
        await asyncio.to_thread(service.process.popen.wait, 10)
    finally:
        service.stop()


async def test_at_info_only_the_ends_the_service_caused_are_logged(
    redis_server: RedisServer, tmp_path: Path, channel: str
) -> None:
    """A line per ordinary open and close cost more than anything else in a connect: they are DEBUG."""
    service = SseService(tmp_path, redis_server.url, free_port(), env={"SSE_LOG_LEVEL": "INFO"}).start()
    assert service.process is not None
    try:
        async with open_stream(f"{service.url}/sse/{channel}.left"):
            await wait_until(service, "sse_connections", 1)
        await wait_until(service, "sse_connections", 0)
        async with open_stream(f"{service.url}/sse/{channel}.ended") as ended:
            await wait_until(service, "sse_connections", 1)
            service.process.signal(signal.SIGTERM)
            await ended.read_to_end(timeout=3)
        await asyncio.to_thread(service.process.popen.wait, 10)
        log = service.process.log_tail(200)
    finally:
        service.stop()
    assert "stream open" not in log
    closed = [line for line in log.splitlines() if "stream closed" in line]
    assert len(closed) == 1, log
    assert f"channels={channel}.ended " in closed[0]
    assert "reason=server shutdown" in closed[0]
