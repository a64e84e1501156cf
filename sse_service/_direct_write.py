"""Body chunks written straight to uvicorn's httptools transport, beside the ASGI `send`.

A delivery through `send` costs the service about three times the write itself: the message dict,
the coroutine and its eager first step, uvicorn's checks and its framing of the chunk, per
connection per event. The fan-out writes one run of frames to thousands of connections, so it frames
the run once as an HTTP/1.1 chunk (`http_chunk`) and hands the same bytes to each connection's transport.

This is done only where it is the very write `send` would make: the server is uvicorn with its
httptools protocol (`RequestResponseCycle.send` is the `send` the stream got), the response has
started with chunked encoding, and the connection is neither paused (flow control), complete, nor
closed. Anything else — the start, the end, a paused socket (which `send` waits on), h11 or another
ASGI server — goes through `send` as before. The uvicorn internals read here are pinned by
`tests/sse_service/test_uvicorn_internals.py`, and pyproject.toml's range of uvicorn names the
releases checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Send


def _cycle_class() -> Any:
    try:
        from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
    except ImportError:  # uvicorn without httptools: every write goes through `send`
        return None
    return RequestResponseCycle


_CYCLE = _cycle_class()


def http_chunk(body: bytes) -> bytes:
    """`body` framed as one HTTP/1.1 chunk, as uvicorn frames a `more_body` message."""
    return b"%x\r\n%b\r\n" % (len(body), body)


class DirectWriter:
    """One connection's transport, written to while uvicorn itself would write without waiting."""

    __slots__ = ("_cycle", "_flow", "_transport")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._flow = cycle.flow
        self._transport: asyncio.Transport = cycle.transport

    def write(self, framed: bytes) -> bool:
        """Writes one framed chunk; False (nothing written) when `send` must take it instead."""
        cycle = self._cycle
        if (
            self._flow.write_paused
            or cycle.disconnected
            or cycle.response_complete
            or self._transport.is_closing()
        ):
            return False
        self._transport.write(framed)
        return True


def direct_writer(send: Send) -> DirectWriter | None:
    """The direct way to the connection behind `send`, once its chunked response has started; None
    where the server is not uvicorn's httptools protocol or the response is not chunked."""
    cycle: Any = getattr(send, "__self__", None)
    if _CYCLE is None or type(cycle) is not _CYCLE:
        return None
    if getattr(send, "__func__", None) is not _CYCLE.send:
        return None
    if not cycle.response_started or cycle.chunked_encoding is not True:
        return None
    return DirectWriter(cycle)
