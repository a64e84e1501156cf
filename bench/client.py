"""The load client process: N SSE streams in one asyncio (uvloop) process, driven over stdin/stdout.

`python -m bench.client CONFIG_JSON`, then one JSON command per line; each gets one JSON answer:
connect, status, quiesce, reset, drain, reconnects, close. A process of its own so that reading thousands of
streams never runs on the server's event loop; its CPU is reported next to the servers'.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import uvloop

from ._jsonlines import Message, log, reply
from ._listener import Listener, Totals
from ._stream import SseConnection
from .latency import Histogram


class LoadClient:
    def __init__(self, config: dict[str, Any]) -> None:
        self._host: str = config["host"]
        self._port: int = config["port"]
        self._prefix: str = config["path_prefix"]
        self._ready_marker: bytes = config["ready_marker"].encode()
        self._connect_concurrency: int = config["connect_concurrency"]
        self._timeout: float = config["connect_timeout"]
        self._reconnect: bool = config["reconnect"]
        self._reconnect_delay: float = config["reconnect_delay"]
        # As an EventSource: wait the server's `retry:` before reconnecting (else `reconnect_delay`).
        self._honour_retry: bool = config.get("honour_retry", False)
        self.totals = Totals()
        channels: list[str] = config["channels"]
        total = config["per_channel"] * len(channels)
        # Interleaved, so that connecting and every measurement spread over all channels alike.
        self.listeners = [
            Listener(channels[i % len(channels)], self.totals, self._ended) for i in range(total)
        ]
        self.closed_streams = 0
        self.reconnect_failures = 0
        # Per reconnect that succeeded: when it was attempted (wall clock), and how long the listener
        # was without a stream (cut to reopened) and how long the reopening took (attempt to ready).
        self.reconnect_log: list[tuple[float, float, float]] = []
        self._reconnecting: set[asyncio.Task[None]] = set()
        self._closing = False

    async def connect(self) -> Message:
        errors: dict[str, int] = {}
        gate = asyncio.Semaphore(self._connect_concurrency)

        async def one(listener: Listener) -> None:
            async with gate:
                try:
                    await self._open(listener)
                except (OSError, TimeoutError) as exc:
                    key = f"{type(exc).__name__}: {exc}"[:120]
                    errors[key] = errors.get(key, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one(listener) for listener in self.listeners))
        elapsed = time.monotonic() - started
        connected = sum(listener.alive for listener in self.listeners)
        log("client", f"{connected}/{len(self.listeners)} streams open in {elapsed:.2f}s errors={errors}")
        return {"connected": connected, "connect_s": round(elapsed, 3), "connect_errors": errors}

    async def _open(self, listener: Listener) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        resume = b"Last-Event-ID: %s\r\n" % listener.last_id if listener.last_id else b""
        request = (
            b"GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\n%s\r\n"
            % (self._prefix.encode(), listener.channel.encode(), self._host.encode(), self._port, resume)
        )
        connection = SseConnection(listener, request, ready, self._ready_marker)
        listener.connection = connection
        try:
            async with asyncio.timeout(self._timeout):
                await loop.create_connection(lambda: connection, self._host, self._port)
                await ready
        except BaseException:
            connection.close()
            raise

    def _ended(self, listener: Listener) -> None:
        """The server ended a live stream: a cut-off. Reconnect, as a browser would, if configured."""
        self.closed_streams += 1
        listener.ended_at = self.totals.last_activity = time.monotonic()
        if self.totals.counting:
            listener.cutoffs += 1
        if self._reconnect and not self._closing:
            task = asyncio.get_running_loop().create_task(self._reopen(listener))
            self._reconnecting.add(task)
            task.add_done_callback(self._reconnecting.discard)

    async def _reopen(self, listener: Listener) -> None:
        delay = self._reconnect_delay
        if self._honour_retry and listener.retry_ms is not None:
            delay = listener.retry_ms / 1000
        for attempt in range(20):
            await asyncio.sleep(delay * min(attempt + 1, 4))
            if self._closing:
                return
            attempted = time.monotonic()
            try:
                await self._open(listener)
            except (OSError, TimeoutError) as exc:
                self.reconnect_failures += 1
                log("client", f"reconnect failed: {exc!r}")
                continue
            now = time.monotonic()
            wall = time.time() - (now - attempted)
            self.reconnect_log.append((wall, now - listener.ended_at, now - attempted))
            listener.reconnects += 1
            listener.resuming = True
            self.totals.last_activity = time.monotonic()
            return

    def status(self) -> Message:
        alive = [listener for listener in self.listeners if listener.alive]
        return {
            "alive": len(alive),
            "warm_missing": sum(not listener.warm for listener in alive),
            "events": self.totals.events,
            "closed_streams": self.closed_streams,
        }

    async def quiesce(self, quiet_s: float, max_s: float) -> Message:
        """Waits until no event has arrived for `quiet_s`: warm-up traffic must not leak into a run."""
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            if time.monotonic() - self.totals.last_activity >= quiet_s:
                return {"quiet": True}
            await asyncio.sleep(0.05)
        return {"quiet": False}

    def reset(self) -> Message:
        for listener in self.listeners:
            listener.reset()
        totals = self.totals
        totals.histogram = Histogram()
        totals.events = totals.parse_errors = 0
        totals.last_rx_ns = 0
        totals.counting = True
        self.closed_streams = 0
        self.reconnect_failures = 0
        self.reconnect_log = []
        return {"alive": sum(listener.alive for listener in self.listeners)}

    async def drain(self, published: dict[str, int], max_s: float, quiet_s: float) -> Message:
        """Waits for every listener to have every event published on its channel (or for silence)."""
        started = time.monotonic()
        while time.monotonic() - started < max_s:
            if not self._reconnecting and all(
                listener.next_seq >= published[listener.channel] for listener in self.listeners
            ):
                break
            if time.monotonic() - self.totals.last_activity >= quiet_s and not self._reconnecting:
                break
            await asyncio.sleep(0.05)
        return self._results(published, time.monotonic() - started)

    def _results(self, published: dict[str, int], drain_s: float) -> Message:
        listeners = self.listeners
        delivered = [listener.delivered for listener in listeners]
        gaps = sum(listener.gaps for listener in listeners)
        at_reconnect = sum(listener.gaps_at_reconnect for listener in listeners)
        return {
            "drain_s": round(drain_s, 3),
            "expected": sum(published[listener.channel] for listener in listeners),
            "delivered": sum(delivered),
            "lost": sum(listener.lost(published[listener.channel]) for listener in listeners),
            "lost_in_gaps_at_reconnect": at_reconnect,
            "lost_in_gaps_in_stream": gaps - at_reconnect,
            "duplicates": sum(listener.dups for listener in listeners),
            "cutoffs": sum(listener.cutoffs for listener in listeners),
            "reconnects": sum(listener.reconnects for listener in listeners),
            "reconnects_resumed_clean": sum(listener.resumed_clean for listener in listeners),
            "reconnect_failures": self.reconnect_failures,
            "history_resets": sum(listener.resets for listener in listeners),
            "alive_at_end": sum(listener.alive for listener in listeners),
            "per_conn_min": min(delivered, default=0),
            "per_conn_max": max(delivered, default=0),
            "parse_errors": self.totals.parse_errors,
            "last_rx_ns": self.totals.last_rx_ns,
            **self.totals.histogram.summary(),
        }

    def close(self) -> Message:
        self._closing = True
        for task in self._reconnecting:
            task.cancel()
        for listener in self.listeners:
            if listener.connection is not None:
                listener.connection.close()
        return {"ok": True}


async def serve(config: dict[str, Any]) -> None:
    client = LoadClient(config)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    while line := await commands.readline():
        command: dict[str, Any] = json.loads(line)
        name = command["cmd"]
        if name == "connect":
            reply(await client.connect())
        elif name == "status":
            reply(client.status())
        elif name == "quiesce":
            reply(await client.quiesce(command["quiet_s"], command["max_s"]))
        elif name == "reconnects":
            reply({"reconnects": client.reconnect_log})
        elif name == "reset":
            reply(client.reset())
        elif name == "drain":
            reply(await client.drain(command["published"], command["max_s"], command["quiet_s"]))
        elif name == "close":
            reply(client.close())
            await asyncio.sleep(0.2)
            return
        else:
            reply({"error": f"unknown command {name!r}"})


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    needed = config["per_channel"] * len(config["channels"]) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    uvloop.run(serve(config))


if __name__ == "__main__":
    main(sys.argv[1:])
