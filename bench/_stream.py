"""One SSE stream on the wire (no HTTP library) and the per-listener accounting the benchmark needs.

A `Listener` is one simulated browser: it outlives its TCP connections, so that a stream cut off by the
server and reopened with `Last-Event-ID` keeps one sequence account. Loss is counted as sequence gaps,
which an in-order stream makes exact; whether a gap opened at a reconnect (the client missed events
while away and was not given them back) or inside a live stream is kept apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

from . import latency, payload

# Batches up to this size are timed event by event; the service sends one event per write at
# steady rates, so only a flood (or a client falling behind) takes the batch path.
EXACT_UP_TO = 8


class Totals:
    """What every listener of the process adds to; read by the client's phase loops."""

    __slots__ = ("counting", "events", "histogram", "last_activity", "last_rx_ns", "parse_errors")

    def __init__(self) -> None:
        self.counting = False
        self.events = 0
        self.last_rx_ns = 0
        self.last_activity = time.monotonic()
        self.parse_errors = 0
        self.histogram = latency.Histogram()


class Listener:
    __slots__ = (
        "channel",
        "connection",
        "cutoffs",
        "delivered",
        "dups",
        "gaps",
        "gaps_at_reconnect",
        "last_id",
        "next_seq",
        "on_end",
        "reconnects",
        "resets",
        "resumed_clean",
        "resuming",
        "totals",
        "warm",
    )

    def __init__(self, channel: str, totals: Totals, on_end: Callable[[Listener], None]) -> None:
        self.channel = channel
        self.totals = totals
        self.on_end = on_end
        self.connection: SseConnection | None = None
        self.last_id = b""
        self.warm = False
        self.reset()

    def reset(self) -> None:
        self.next_seq = 0
        self.delivered = 0
        self.dups = 0
        self.gaps = 0
        self.gaps_at_reconnect = 0
        self.cutoffs = 0
        self.reconnects = 0
        self.resets = 0
        self.resumed_clean = 0
        self.resuming = False

    @property
    def alive(self) -> bool:
        return self.connection is not None and not self.connection.ended

    def lost(self, published: int) -> int:
        return self.gaps + max(0, published - self.next_seq)

    def events(self, buf: bytes, end: int) -> None:
        """The hot path: every complete event in `buf[:end]`.

        A batch of more than `EXACT_UP_TO` events that continues the sequence without a gap is
        accounted as a whole, each event at the batch's oldest latency (an upper bound): under a
        flood the client must not be what falls behind. Anything else is parsed event by event.
        """
        count = buf.count(b"data: ", 0, end)
        if not count:
            return
        totals = self.totals
        now = time.time_ns()
        # The service's word that history this client missed is gone: the gap it leaves is loss.
        resets = buf.count(b"event: reset\n", 0, end)
        if resets:
            count -= resets
            if totals.counting:
                self.resets += resets
        if count and (count <= EXACT_UP_TO or not (totals.counting and self._batch(buf, end, count, now))):
            self._each(buf, end, count, now)
        totals.events += count
        totals.last_rx_ns = now
        totals.last_activity = time.monotonic()
        # Kept for `Last-Event-ID` should the stream be cut off; only the last one is needed.
        i = buf.rfind(b"id: ", 0, end)
        if i >= 0:
            self.last_id = buf[i + 4 : buf.find(b"\n", i)]

    def _batch(self, buf: bytes, end: int, count: int, now: int) -> bool:
        first = payload.EVENT_DATA.search(buf, 0, end)
        last = payload.EVENT_DATA.match(buf, buf.rfind(b"data: ", 0, end), end)
        if first is None or last is None:
            return False
        seq = int(first[2])
        if seq != self.next_seq or int(last[2]) - seq + 1 != count:
            return False
        if self.resuming:
            self.resumed_clean += 1
            self.resuming = False
        self.next_seq = seq + count
        self.delivered += count
        self._latency(now - int(first[1]), count)
        return True

    def _each(self, buf: bytes, end: int, count: int, now: int) -> None:
        totals = self.totals
        counting = totals.counting
        hist = totals.histogram
        bins = hist.bins
        found = 0
        for match in payload.EVENT_DATA.finditer(buf, 0, end):
            found += 1
            seq = int(match[2])
            if seq < 0:
                self.warm = True
                continue
            if not counting:
                continue
            expected = self.next_seq
            if seq != expected:
                if seq < expected:
                    self.dups += 1
                    continue
                self.gaps += seq - expected
                if self.resuming:
                    self.gaps_at_reconnect += seq - expected
            elif self.resuming:
                self.resumed_clean += 1
            self.resuming = False
            self.next_seq = seq + 1
            self.delivered += 1
            lat = now - int(match[1])
            us = lat // 1000
            bins[us // 100 if 0 <= us < 100_000 else latency.bin_of(lat)] += 1
            if lat > hist.max_ns:
                hist.max_ns = lat
        if found != count:
            totals.parse_errors += count - found

    def _latency(self, lat: int, weight: int) -> None:
        hist = self.totals.histogram
        hist.bins[latency.bin_of(lat)] += weight
        if lat > hist.max_ns:
            hist.max_ns = lat


class SseConnection(asyncio.Protocol):
    """Checks the answer is `200 text/event-stream`, de-chunks it, and hands complete events on.

    `ready` resolves on the `: connected` comment, which the service sends once its Redis
    subscription is confirmed: from then on nothing published can be missed.
    """

    def __init__(self, listener: Listener, request: bytes, ready: asyncio.Future[None]) -> None:
        self.listener = listener
        self.ready = ready
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
        if not self.ready.done() and b": connected\n" in buf:
            self.ready.set_result(None)
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
