"""One SSE stream on the wire, without an HTTP library: status and headers, de-chunking, events.

Complete events go to the connection's `Listener` (`_listener.py`), which outlives the connection.
"""

from __future__ import annotations

import asyncio
from typing import cast

from ._listener import Listener


class SseConnection(asyncio.Protocol):
    """Checks the answer is `200 text/event-stream`, de-chunks it, and hands complete events on.

    `ready` resolves on `ready_marker`: the project's `: connected` comment, which the service sends
    once its Redis subscription is confirmed (from then on nothing published can be missed), or
    nchan's `: hi` (the warm-up phase makes sure its subscription is live before anything is counted).
    """

    def __init__(
        self, listener: Listener, request: bytes, ready: asyncio.Future[None], ready_marker: bytes
    ) -> None:
        self.listener = listener
        self.ready = ready
        self._ready_marker = ready_marker
        self.ended = False
        self._request = request
        self._transport: asyncio.Transport | None = None
        self._head: bytes | None = b""
        self._chunked = False
        self._chunk_buf = b""
        self._remaining = 0
        self._skip = 0
        self._eof = False
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(ConnectionError(f"closed before the stream started ({exc})"))

    def close(self) -> None:
        self.ended = True
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            data = self._headers(data)
            if not data:
                return
        if self._chunked:
            data = self._dechunk(data)
        if data:
            self._feed(data)
        if self._eof:
            self._end(ConnectionError("stream ended before it started"))

    def _headers(self, data: bytes) -> bytes:
        assert self._head is not None
        head = self._head + data
        cut = head.find(b"\r\n\r\n")
        if cut < 0:
            self._head = head
            if len(head) > 65536:
                self._fail("response header too long")
            return b""
        self._head = None
        lines = head[:cut].decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        status = lines[0].split(" ", 2)[1] if " " in lines[0] else "?"
        if status != "200" or not fields.get("content-type", "").startswith("text/event-stream"):
            self._fail(f"HTTP {status} {fields.get('content-type', '')}")
            return b""
        self._chunked = "chunked" in fields.get("transfer-encoding", "")
        return head[cut + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        # Most reads hold exactly one whole chunk (one write of the server): slice it out.
        if not (self._chunk_buf or self._remaining or self._skip):
            eol = data.find(b"\r\n", 0, 10)
            if eol > 0 and data.endswith(b"\r\n"):
                try:
                    size = int(data[:eol], 16)
                except ValueError:  # a chunk extension: the general path below reads it
                    size = 0
                if size and eol + 4 + size == len(data):
                    return data[eol + 2 : -2]
        return self._dechunk_any(data)

    def _dechunk_any(self, data: bytes) -> bytes:
        buf = self._chunk_buf + data if self._chunk_buf else data
        self._chunk_buf = b""
        out = []
        pos, size = 0, len(buf)
        while pos < size:
            if self._remaining:
                take = min(self._remaining, size - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._skip = 2
            elif self._skip:
                take = min(self._skip, size - pos)
                pos += take
                self._skip -= take
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    self._chunk_buf = buf[pos:]
                    break
                length = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if length == 0:
                    self._eof = True
                    break
                self._remaining = length
        return out[0] if len(out) == 1 else b"".join(out)

    def _feed(self, data: bytes) -> None:
        buf = self._tail + data if self._tail else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._tail = buf
            return
        end += 2
        self._tail = buf[end:]
        if not self.ready.done() and self._ready_marker in buf:
            self.ready.set_result(None)
        if b"retry: " in buf:
            self.listener.retry(buf, end)
        self.listener.events(buf, end)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        self.close()

    def _end(self, before_start: Exception) -> None:
        if self.ended:
            return
        self.close()
        if not self.ready.done():
            self.ready.set_exception(before_start)
        elif self.listener.connection is self:
            self.listener.on_end(self.listener)
