"""The service on a Redis it reaches by Unix socket (`SSE_REDIS_URL=unix://...`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.conftest import TEST_SSE_ENV
from tests.support.publish import publish
from tests.support.sse import open_stream


@pytest.fixture
def socket_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="redis-") as directory:
        server = RedisServer(tmp_path, free_port(), unix_socket=Path(directory) / "redis.sock").start()
        yield server
        server.stop()


async def test_a_unix_socket_redis_url_subscribes_and_delivers(
    socket_redis: RedisServer, tmp_path: Path, channel: str
) -> None:
    """`unix://` is an accepted SSE_REDIS_URL, but the subscription's connection was made with TCP
    keepalive arguments that redis-py's Unix socket connection does not take: the hub's link failed
    with a TypeError at every start, and the service never became ready. A Unix socket gets no TCP
    options now; the service subscribes and delivers."""
    assert socket_redis.unix_socket is not None
    url = f"unix://{socket_redis.unix_socket}?db=0"
    service = SseService(tmp_path, url, free_port(), env=TEST_SSE_ENV).start()
    try:
        async with open_stream(f"{service.url}/sse/{channel}") as stream:
            with socket_redis.client() as client:
                publish(client, channel, '{"over": "a unix socket"}')
            events = await stream.wait_for_events(1)
            assert events[0].data == '{"over": "a unix socket"}'
    finally:
        service.stop()
