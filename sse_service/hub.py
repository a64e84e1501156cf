"""The fan-out: one Redis pub/sub connection per process, shared by every SSE connection in it.

Where the cost is. Measured on 2 vCPUs, the expensive part of fanning one message out to thousands of
browsers is waking a task per connection per message (an `asyncio.Queue` per client), not Python
itself. So nothing here wakes a task per connection:

- One reader task owns the pub/sub connection. It reads every reply Redis has already delivered into
  one batch (a read that would have to wait ends the batch: see `_eager`), encodes each message into
  its SSE frame once, joins a batch's frames per connection, and writes them to each connection's
  ASGI `send` from this very task (`Subscriber.push`).
- Back-pressure: a connection whose socket has paused writing is parked behind a task of its own
  with a bounded backlog and, past that bound, is disconnected (it reconnects and resumes). The hub
  itself never waits for a client.

A channel is subscribed in Redis when its first listener arrives and unsubscribed when its last
leaves, so a process receives only what its clients listen to. `attach` returns once Redis has
confirmed the subscription, so a stream that has started receives everything published after.

The connection is redis-py's low-level `Connection`, not `PubSub`: `PubSub` reconnects and
resubscribes by itself, silently, and whatever was published meanwhile is gone. Here every
disconnect is seen, logged and counted; the hub reconnects with backoff, resubscribes, and fills the
gap from the streams (`history`): it remembers the newest id it delivered (ids are ordered across all
channels), holds live messages back while it reads what came after that id, delivers that, then the
held messages, dropping any id it has already delivered. Clients stay connected throughout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis
from prometheus_client import Histogram
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ._eager import EagerCoroutine
from .history import History, read_history
from .protocol import EnvelopeError, RedisNames, StreamId, encode_frame, parse_envelope, parse_stream_id
from .settings import Settings
from .subscriber import Subscriber

logger = logging.getLogger(__name__)

_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


# Publish-to-send latency buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class HubStats:
    """Counters for operators, read by `metrics` when scraped; plain ints keep the hot path cheap."""

    connections: int = 0
    messages_received: int = 0
    events_delivered: int = 0
    bytes_sent: int = 0
    messages_rejected: int = 0
    duplicates_dropped: int = 0
    slow_consumers_cut: int = 0
    redis_reconnects: int = 0
    gaps_filled: int = 0


class ControlListener(Protocol):
    """Gets the messages of one extra channel the hub keeps subscribed (revocation.py's)."""

    channel: bytes

    def subscribed(self) -> None: ...

    def received(self, data: bytes) -> None: ...


class Hub:
    def __init__(
        self, settings: Settings, commands: redis.Redis, control: ControlListener | None = None
    ) -> None:
        self._settings = settings
        # A separate, ordinary client: a subscribed connection cannot run commands.
        self._commands = commands
        self._control = control
        self._names = RedisNames(settings.key_prefix)
        self._listeners: dict[str, set[Subscriber]] = {}
        self._confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._connection: Connection | None = None
        self._write_lock = asyncio.Lock()
        self._last_reply = 0.0
        # The newest id delivered; None until the first connection tells where "now" is.
        self._watermark: StreamId | None = None
        # Batches held back while a gap is being filled; None when delivering live.
        self._held: list[list[Any]] | None = None
        self.stats = HubStats()
        self.latency = Histogram(
            "sse_publish_to_send_seconds",
            "From publish (Redis's clock) to the hub writing the event to its clients.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    def listener_counts(self) -> dict[str, int]:
        return {channel: len(listeners) for channel, listeners in self._listeners.items()}

    async def attach(self, subscriber: Subscriber) -> None:
        """Registers `subscriber`; returns once Redis confirms its channels (or is unreachable)."""
        self.stats.connections += 1
        new_channels = []
        for channel in subscriber.channels:
            listeners = self._listeners.setdefault(channel, set())
            if not listeners:
                new_channels.append(self._names.pubsub_channel(channel))
            listeners.add(subscriber)
        if self._connection is None:
            return
        waiters = [
            w for channel in subscriber.channels for w in self._waiting(self._names.pubsub_channel(channel))
        ]
        if new_channels:
            await self._command(b"SUBSCRIBE", *new_channels)
        if waiters:
            await asyncio.wait(waiters)

    def _waiting(self, pubsub_channel: bytes) -> list[asyncio.Future[None]]:
        """A future for Redis's confirmation of `pubsub_channel`, or none if already confirmed."""
        if pubsub_channel in self._confirmed:
            return []
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(pubsub_channel, []).append(waiter)
        return [waiter]

    def detach(self, subscriber: Subscriber) -> None:
        self.stats.connections -= 1
        gone = []
        for channel in subscriber.channels:
            listeners = self._listeners.get(channel)
            if listeners is None:
                continue
            listeners.discard(subscriber)
            if not listeners:
                del self._listeners[channel]
                gone.append(self._names.pubsub_channel(channel))
        if gone and self._connection is not None:
            self._confirmed.difference_update(gone)
            asyncio.get_running_loop().create_task(self._command(b"UNSUBSCRIBE", *gone))

    def close_all(self, reason: str) -> None:
        for listeners in list(self._listeners.values()):
            for subscriber in list(listeners):
                subscriber.close(reason)

    async def run(self) -> None:
        """Keeps the subscription alive for the life of the process."""
        failures = 0
        while True:
            try:
                connection = await self._connect()
            except (RedisError, OSError) as exc:
                delay = _RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)]
                failures += 1
                logger.warning("redis unreachable (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            gap_filler = asyncio.get_running_loop().create_task(self._fill_gap())
            try:
                await self._read_until_broken(connection)
            except (RedisError, OSError) as exc:
                self.stats.redis_reconnects += 1
                logger.warning("redis subscription lost (%s), reconnecting", exc)
            finally:
                gap_filler.cancel()
                self._lost(connection)

    async def _connect(self) -> Connection:
        # RESP2: pub/sub replies arrive as plain arrays, read in order like any other reply
        # (redis-py 8 defaults to RESP3, where they are push messages routed to a handler).
        pool = ConnectionPool.from_url(
            self._settings.redis_url,
            protocol=2,
            health_check_interval=0,
            socket_keepalive=True,
            socket_connect_timeout=5,
        )
        if self._watermark is None:
            last_id = await self._commands.get(self._names.last_id_key)
            self._watermark = parse_stream_id(last_id) if last_id else (0, 0)
        else:
            self._held = []  # a reconnect: hold live messages until the gap is filled
        connection: Connection = pool.make_connection()  # type: ignore[no-untyped-call]
        await connection.connect()  # type: ignore[no-untyped-call]
        self._connection = connection
        self._last_reply = time.monotonic()
        if self._control is not None:
            await self._command(b"SUBSCRIBE", self._control.channel)
        if self._listeners:
            await self._command(b"SUBSCRIBE", *(self._names.pubsub_channel(c) for c in self._listeners))
        logger.info("redis subscription connected, %d channels", len(self._listeners))
        return connection

    async def _fill_gap(self) -> None:
        """After a reconnect: delivers what was published while the link was down, then goes live."""
        if self._held is None:
            return
        channels = list(self._listeners)
        waiters = [w for name in map(self._names.pubsub_channel, channels) for w in self._waiting(name)]
        try:
            if waiters:
                await asyncio.wait(waiters)
            assert self._watermark is not None
            history = await read_history(self._commands, self._names, channels, self._watermark)
        except (RedisError, OSError) as exc:
            logger.warning("could not read the gap after reconnecting (%s); reconnecting again", exc)
            if self._connection is not None:
                await self._connection.disconnect(nowait=True)
            return
        self._deliver_history(history)
        held, self._held = self._held, None
        for batch in held:
            self._dispatch(batch)
        self.stats.gaps_filled += 1
        logger.info("gap filled: %d events on %d channels", len(history.frames), len(channels))

    def _deliver_history(self, history: History) -> None:
        runs: list[tuple[str, list[bytes]]] = []
        for channel, _, frame in history.frames:
            if runs and runs[-1][0] == channel:
                runs[-1][1].append(frame)
            else:
                runs.append((channel, [frame]))
        self._fan_out(runs)
        self._watermark = max(history.newest, self._watermark or history.newest)

    async def read_history(self, channels: tuple[str, ...], after: StreamId) -> History:
        return await read_history(self._commands, self._names, channels, after)

    def _lost(self, connection: Connection) -> None:
        self._connection = None
        self._confirmed.clear()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiters.clear()
        asyncio.get_running_loop().create_task(connection.disconnect(nowait=True))

    async def _command(self, *args: bytes) -> None:
        connection = self._connection
        # Never let a write reconnect the socket behind the reader's back: redis-py would do so
        # silently, and messages published meanwhile would be lost without anyone noticing.
        if connection is None or not connection.is_connected:
            return
        async with self._write_lock:
            try:
                await connection.send_command(*args, check_health=False)
            except (RedisError, OSError) as exc:
                # The reader sees the same broken connection and reconnects; nothing to do here.
                logger.debug("redis command %s failed: %s", args[0], exc)

    async def keepalive(self) -> None:
        """Pings the subscription so a silently dead link is noticed within a few intervals."""
        interval = self._settings.heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            connection = self._connection
            if connection is None:
                continue
            if time.monotonic() - self._last_reply > 3 * interval:
                logger.warning("redis subscription silent for %.0fs, reconnecting", 3 * interval)
                await connection.disconnect(nowait=True)
                continue
            await self._command(b"PING")

    async def _read_until_broken(self, connection: Connection) -> None:
        batch: list[Any] = []
        read = EagerCoroutine(self._read(connection))
        while True:
            batch.append(await read)
            while True:
                try:
                    read = EagerCoroutine(self._read(connection))
                except BaseException:
                    self._dispatch(batch)
                    raise
                if not read.done:
                    break
                batch.append(read.result())
            self._dispatch(batch)
            batch = []

    async def _read(self, connection: Connection) -> Any:
        reply = await connection.read_response(timeout=math.inf, disconnect_on_error=False)
        if reply is None:
            raise RedisConnectionError("connection closed")
        return reply

    def _dispatch(self, replies: list[Any]) -> None:
        self._last_reply = time.monotonic()
        if self._held is not None:
            for reply in replies:
                if reply[0] == b"subscribe":
                    self._confirm(reply[1])
            self._held.append(replies)
            return
        # Consecutive messages of one channel are joined into one chunk per listener.
        runs: list[tuple[str, list[bytes]]] = []
        for reply in replies:
            kind = reply[0]
            if kind == b"message":
                if self._control is not None and reply[1] == self._control.channel:
                    self._control.received(reply[2])
                    continue
                channel = self._names.channel_of(reply[1])
                frame = self._frame(channel, reply[2])
                if frame is None:
                    continue
                if runs and runs[-1][0] == channel:
                    runs[-1][1].append(frame)
                else:
                    runs.append((channel, [frame]))
            elif kind == b"subscribe":
                self._confirm(reply[1])
        self._fan_out(runs)

    def _fan_out(self, runs: list[tuple[str, list[bytes]]]) -> None:
        if len(runs) == 1:
            channel, frames = runs[0]
            listeners = self._listeners.get(channel, ())
            chunk = b"".join(frames)
            for subscriber in listeners:
                subscriber.push(chunk)
            self.stats.events_delivered += len(frames) * len(listeners)
            self.stats.bytes_sent += len(chunk) * len(listeners)
            return
        per_subscriber: dict[Subscriber, list[bytes]] = {}
        for channel, frames in runs:
            listeners = self._listeners.get(channel, ())
            chunk = b"".join(frames)
            for subscriber in listeners:
                per_subscriber.setdefault(subscriber, []).append(chunk)
            self.stats.events_delivered += len(frames) * len(listeners)
            self.stats.bytes_sent += len(chunk) * len(listeners)
        for subscriber, chunks in per_subscriber.items():
            subscriber.push(b"".join(chunks))

    def _frame(self, channel: str, payload: bytes) -> bytes | None:
        self.stats.messages_received += 1
        try:
            if len(payload) > self._settings.max_payload_bytes + 64:
                raise EnvelopeError(f"{len(payload)} bytes, over the limit")
            envelope = parse_envelope(payload)
            stream_id = parse_stream_id(envelope.id)
        except (EnvelopeError, ValueError) as exc:
            self.stats.messages_rejected += 1
            logger.warning("rejected a message on %r: %s", channel, exc)
            return None
        if self._watermark is not None and stream_id <= self._watermark:
            self.stats.duplicates_dropped += 1  # delivered already, from the streams after a reconnect
            return None
        self._watermark = stream_id
        # The id's first part is Redis's clock when the event was published.
        self.latency.observe(max(0.0, time.time() - stream_id[0] / 1000))
        return encode_frame(channel, envelope)

    def _confirm(self, pubsub_channel: bytes) -> None:
        if self._control is not None and pubsub_channel == self._control.channel:
            self._control.subscribed()
        self._confirmed.add(pubsub_channel)
        for waiter in self._waiters.pop(pubsub_channel, ()):
            if not waiter.done():
                waiter.set_result(None)
