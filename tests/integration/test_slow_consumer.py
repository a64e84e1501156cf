"""A client that stops reading is cut off, costs bounded memory, slows no one, and loses nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
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


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_stalled_client(port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response, as far as it got."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


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
    log = small_buffer_sse.process.log_tail(100)
    assert "slow consumer" in log

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
