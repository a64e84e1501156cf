"""The uvicorn internals the direct write reads, pinned on a real uvicorn server.

`sse_service/_direct_write.py` writes body chunks to the transport of uvicorn's httptools protocol
where `RequestResponseCycle.send` would make the very same write. It relies on: `send` being that
bound method; `response_started`, `chunked_encoding`, `response_complete` and `disconnected` on the
cycle; `flow.write_paused`, set by the protocol's `pause_writing`; `transport`; and uvicorn's framing
of a chunk. An upgrade of uvicorn that changes any of these fails here, not in production; the range
of uvicorn in pyproject.toml names the releases checked.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from devstack.processes import free_port
from sse_service._direct_write import direct_writer
from sse_service.protocol import Envelope, event_frame
from sse_service.subscriber import Run, Subscriber

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

Handler = Callable[[Send, Receive], Awaitable[None]]


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@asynccontextmanager
async def serving(handler: Handler, http: str) -> AsyncIterator[int]:
    """A real uvicorn with the `http` protocol, whose one route starts a chunked response and hands
    its `send` to `handler`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await handler(send, receive)

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def get(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    return reader, writer


def one_run() -> Run:
    frames = [event_frame("a", (ms, 0), Envelope(b"%d-0" % ms, b"", b"data %d" % ms)) for ms in (1, 2)]
    run = Run("a", frames[0])
    run.add(frames[1])
    return run


def test_the_installed_uvicorn_is_in_the_range_pyproject_names() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    spec = next(d for d in dependencies if re.match(r"uvicorn\b", d))
    low, high = re.fullmatch(r"uvicorn(?:\[\w+\])?>=([\d.]+),<([\d.]+)", spec).groups()  # type: ignore[union-attr]
    assert _release(low) <= _release(uvicorn.__version__) < _release(high)


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_a_run_reaches_the_wire_as_the_chunk_uvicorns_send_would_write(http: str) -> None:
    """Under httptools the run's shared chunk goes to the transport; under h11 through `send`; the
    bytes on the wire are the same either way, and `send` ends the body after them."""
    run = one_run()
    directs: list[bool] = []

    async def handler(send: Send, receive: Receive) -> None:
        directs.append(direct_writer(send) is not None)
        subscriber = Subscriber(("a",), send, 1 << 20)
        subscriber.open({}, b": open\n\n")
        subscriber.go_live()
        subscriber.push_run(run, run.chunk)
        await subscriber.drained()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serving(handler, http) as port:
        reader, writer = await get(port)
        raw = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"8\r\n: open\n\n\r\n" + b"%x\r\n" % len(run.wire) + run.wire + b"\r\n0\r\n\r\n"
    assert directs == [http == "httptools"]


async def test_a_paused_or_lost_connection_is_left_to_send() -> None:
    """`pause_writing` on uvicorn's protocol sets `flow.write_paused`, and losing the connection
    sets `disconnected`: the direct writer reads both, and writes nothing then."""
    seen: dict[str, Any] = {}
    left = asyncio.Event()

    async def handler(send: Send, receive: Receive) -> None:
        writer = direct_writer(send)
        assert writer is not None
        protocol = send.__self__.transport.get_protocol()  # type: ignore[attr-defined]
        protocol.pause_writing()
        seen["paused"] = writer.write(b"1\r\nx\r\n")
        protocol.resume_writing()
        seen["resumed"] = writer.write(b"1\r\ny\r\n")
        while (await receive())["type"] != "http.disconnect":
            pass
        seen["lost"] = writer.write(b"1\r\nz\r\n")
        left.set()

    async with serving(handler, "httptools") as port:
        reader, writer = await get(port)
        raw = await asyncio.wait_for(reader.readuntil(b"y\r\n"), 10)
        writer.close()
        await asyncio.wait_for(left.wait(), 10)
    assert b"x" not in raw.partition(b"\r\n\r\n")[2]
    assert seen == {"paused": False, "resumed": True, "lost": False}
