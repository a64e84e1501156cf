"""What the service does while its Redis goes away and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.conftest import TEST_SSE_ENV
from tests.integration.probes import scrape
from tests.support.publish import publish
from tests.support.sse import open_stream


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def own_sse(own_redis: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    service = SseService(tmp_path, own_redis.url, free_port(), env=TEST_SSE_ENV).start()
    yield service
    service.stop()


async def readiness(service: SseService) -> int:
    async with httpx.AsyncClient(base_url=service.url, timeout=3) as client:
        return (await client.get("/readyz")).status_code


async def eventually(expected: int, service: SseService, timeout: float = 10.0) -> int:
    async with asyncio.timeout(timeout):
        while (status := await readiness(service)) != expected:
            await asyncio.sleep(0.1)
    return status


async def test_readiness_fails_while_redis_is_down_and_streams_survive(
    own_redis: RedisServer, own_sse: SseService, channel: str
) -> None:
    assert await readiness(own_sse) == 200
    async with open_stream(f"{own_sse.url}/sse/{channel}") as stream:
        own_redis.stop()
        assert await eventually(503, own_sse) == 503
        async with httpx.AsyncClient(base_url=own_sse.url) as client:
            assert (await client.get("/healthz")).status_code == 200

        own_redis.start()
        assert await eventually(200, own_sse) == 200
        # Resubscribed: the stream that stayed open receives what is published now.
        async with asyncio.timeout(10):
            while not stream.events:
                with own_redis.client() as client:
                    publish(client, channel, '"back"')
                await stream.read_until(lambda s: bool(s.events) or len(s.comments) > 2, timeout=2)
        assert stream.events[0].data == '"back"'
        assert not stream.ended
    assert (await scrape(own_sse))["sse_redis_reconnects_total"] >= 1


async def test_service_starts_before_redis_and_becomes_ready_when_it_appears(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path, free_port())
    service = SseService(tmp_path, redis_server.url, free_port(), env=TEST_SSE_ENV).start(wait_ready=False)
    try:
        assert await readiness(service) == 503
        redis_server.start()
        assert await eventually(200, service) == 200
    finally:
        service.stop()
        redis_server.stop()
