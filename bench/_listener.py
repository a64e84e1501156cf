"""The per-listener accounting: sequence gaps, duplicates, cut-offs and latency, on the hot path.

A `Listener` is one simulated browser: it outlives its TCP connections, so that a stream cut off by the
server and reopened with `Last-Event-ID` keeps one sequence account. Loss is counted as sequence gaps,
which an in-order stream makes exact; whether a gap opened at a reconnect (the client missed events
while away and was not given them back) or inside a live stream is kept apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import latency, payload

if TYPE_CHECKING:
    from ._stream import SseConnection

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
        "ended_at",
        "gaps",
        "gaps_at_reconnect",
        "last_id",
        "next_seq",
        "on_end",
        "reconnects",
        "resets",
        "resumed_clean",
        "resuming",
        "retry_ms",
        "totals",
        "warm",
    )

    def __init__(self, channel: str, totals: Totals, on_end: Callable[[Listener], None]) -> None:
        self.channel = channel
        self.totals = totals
        self.on_end = on_end
        self.connection: SseConnection | None = None
        self.last_id = b""
        # The server's last `retry:` (None: never told), and when the stream last ended: what an
        # EventSource waits on before it reconnects.
        self.retry_ms: int | None = None
        self.ended_at = 0.0
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

    def retry(self, buf: bytes, end: int) -> None:
        """Keeps the newest `retry:` field in `buf[:end]`, as an EventSource does."""
        i = buf.rfind(b"retry: ", 0, end)
        if i >= 0:
            value = buf[i + 7 : buf.find(b"\n", i)]
            if value.isdigit():
                self.retry_ms = int(value)

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
