"""The fan-out: one Redis subscription per process (one per node on a cluster), shared by every client.

Where the cost is. Measured on 2 vCPUs, the expensive part of fanning one message out to thousands of
browsers is waking a task per connection per message (an `asyncio.Queue` per client), not Python
itself. So nothing here wakes a task per connection:

- Each node's `Link` (`placement.py` keeps them) reads every reply Redis has already delivered into
  one batch. The hub encodes each message into its SSE frame once, joins a batch's frames per
  connection, and writes them to each connection's ASGI `send` from the reader's own task
  (`Subscriber.push`).
- Back-pressure: a connection whose socket has paused writing is parked behind a task of its own
  with a bounded backlog and, past that bound, is disconnected (it reconnects and resumes). The hub
  itself never waits for a client.

A channel is subscribed in Redis when its first listener arrives and unsubscribed when its last
leaves, so a process receives only what its clients listen to. `attach` returns once Redis has
confirmed the subscription, so a stream that has started receives everything published after.

Nothing is lost when a subscription breaks. The hub remembers, per channel, the newest id it
delivered (`_delivered`; read from the channel's stream once its subscription is confirmed). When a link
reconnects, or on a cluster a channel's slot moves to another node (Redis sends `sunsubscribe`) or
its master fails over, the channel is subscribed again, its live messages are held back while what
came after `_delivered` is read from its stream, that is delivered, then the held messages, dropping
any id already delivered. Clients stay connected throughout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Histogram

from ._tasks import spawn
from .history import History, newest_positions, read_history
from .link import Link, Replies
from .placement import Placement
from .protocol import EnvelopeError, Positions, RedisNames, encode_frame, parse_envelope, parse_stream_id
from .redis_clients import REDIS_ERRORS, CommandClient, Topology
from .settings import Settings
from .subscriber import Subscriber

logger = logging.getLogger(__name__)

# Publish-to-send latency buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# How long a new channel's first listener waits for Redis to confirm its subscription. Past that (a
# node down, a link reconnecting) the stream starts anyway, and the subscription fills the gap from
# the channel's stream once it is made.
CONFIRM_TIMEOUT = 5.0
# Envelope bytes around the data: `v1`, the id, the event type and three line breaks.
_ENVELOPE_OVERHEAD = 3 + 31 + 64 + 3

Runs = list[tuple[str, list[bytes]]]


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
    """Listeners per channel, what each channel has delivered, and the gaps still to fill."""

    def __init__(
        self,
        settings: Settings,
        commands: CommandClient,
        topology: Topology,
        control: ControlListener | None = None,
    ) -> None:
        self._settings = settings
        # A separate, ordinary client: a subscribed connection cannot run commands.
        self._commands = commands
        self._control = control
        self._names = RedisNames(settings.key_prefix)
        self._listeners: dict[str, set[Subscriber]] = {}
        self._placement = Placement(topology, self, settings.heartbeat_seconds)
        if control is not None:
            self._placement.add([control.channel])
        # Per channel: the newest id delivered to its listeners.
        self._delivered: Positions = {}
        # Channels whose subscription broke or moved: filled from their streams once subscribed again,
        # their live messages held back until then.
        self._stale: set[str] = set()
        # Live messages held back, per channel, while its gap is filled or its start position read.
        self._held: dict[str, list[bytes]] = {}
        # Per channel, how often its subscription was interrupted: a gap fill that began before the
        # latest interruption must leave the channel to the fill that follows it.
        self._interruptions: dict[str, int] = {}
        self._starts: dict[str, asyncio.Task[None]] = {}
        self.stats = HubStats()
        self.latency = Histogram(
            "sse_publish_to_send_seconds",
            "From publish (Redis's clock) to the hub writing the event to its clients.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )

    @property
    def connected(self) -> bool:
        return self._placement.connected

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    def listener_counts(self) -> dict[str, int]:
        return {channel: len(listeners) for channel, listeners in self._listeners.items()}

    async def attach(self, subscriber: Subscriber) -> Positions:
        """Registers `subscriber`; returns once everything published from now on will reach it.

        That is once Redis confirms its channels' subscriptions or, when a link is down, once their
        positions are known, so the subscription fills the gap when it is made. When neither can be
        had, the subscriber is closed ("redis unavailable"): the client retries. Returns, per channel
        whose position is known, the newest id delivered before the subscriber could receive
        anything: where a connection that did not ask to resume starts.
        """
        self.stats.connections += 1
        new_channels = []
        for channel in subscriber.channels:
            listeners = self._listeners.setdefault(channel, set())
            if not listeners:
                new_channels.append(channel)
            listeners.add(subscriber)
        if new_channels:
            start = spawn(self._start(new_channels))
            for channel in new_channels:
                self._starts[channel] = start
        starts = {self._starts[c] for c in subscriber.channels if c in self._starts}
        if starts:
            await asyncio.wait(starts)
        return {c: self._delivered[c] for c in subscriber.channels if c in self._delivered}

    async def _start(self, channels: list[str]) -> None:
        """Subscribes new channels, then learns where each stands; their messages wait meanwhile."""
        try:
            for channel in channels:
                self._held[channel] = []
            waiters = self._placement.add(map(self._names.pubsub_channel, channels))
            if waiters:
                await asyncio.wait(waiters, timeout=CONFIRM_TIMEOUT)
            try:
                positions = await newest_positions(self._commands, self._names, channels)
            except REDIS_ERRORS as exc:
                logger.warning("no start position for %s: %s", ",".join(channels), exc)
                positions = {}
            runs: Runs = []
            for channel in channels:
                if channel not in self._listeners:
                    continue
                if channel in positions:
                    self._delivered[channel] = max(positions[channel], self._delivered.get(channel, (0, 0)))
                if not self._placement.subscribed(self._names.pubsub_channel(channel)):
                    if channel in self._delivered:
                        self._stale.add(channel)  # the subscription, once made, fills the gap
                        continue
                    self._held.pop(channel, None)
                    for subscriber in list(self._listeners[channel]):
                        subscriber.close("redis unavailable")
                elif channel not in self._stale:  # else its gap fill delivers what is held
                    self._release_held(runs, channel)
            self._fan_out(runs)
        finally:
            for channel in channels:
                if self._starts.get(channel) is asyncio.current_task():
                    del self._starts[channel]

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
                self._delivered.pop(channel, None)
                self._held.pop(channel, None)
                self._stale.discard(channel)
                self._interruptions.pop(channel, None)
                gone.append(self._names.pubsub_channel(channel))
        self._placement.remove(gone)

    def close_all(self, reason: str) -> None:
        for listeners in list(self._listeners.values()):
            for subscriber in list(listeners):
                subscriber.close(reason)

    async def read_history(self, positions: Positions) -> History:
        return await read_history(self._commands, self._names, positions)

    async def run(self) -> None:
        """Keeps the subscriptions for the life of the process."""
        await asyncio.gather(self._placement.run(), self._placement.keepalive())

    def interrupted(self, pubsub_channels: Iterable[bytes], broken: bool) -> None:
        """Holds these channels' live messages back until their gap is filled (`resumed`)."""
        if broken:
            self.stats.redis_reconnects += 1
        for channel in map(self._channel_of, pubsub_channels):
            if channel is not None and channel in self._listeners:
                self._stale.add(channel)
                self._held.setdefault(channel, [])
                self._interruptions[channel] = self._interruptions.get(channel, 0) + 1

    def resumed(self, link: Link, pubsub_channels: list[bytes]) -> None:
        """Fills the gaps of the channels among these whose subscription was interrupted."""
        stale = [c for c in map(self._channel_of, pubsub_channels) if c is not None and c in self._stale]
        if stale:
            spawn(self._fill_gap(link, stale))

    async def _fill_gap(self, link: Link, channels: list[str]) -> None:
        """Delivers what `channels` missed while not subscribed, then what was held back meanwhile."""
        waiters = link.waiting([self._names.pubsub_channel(c) for c in channels])
        # A channel still starting gets its position from its start first.
        waiters += [self._starts[c] for c in channels if c in self._starts]
        if waiters:
            await asyncio.wait(waiters)
        epochs = {c: self._interruptions.get(c, 0) for c in channels}
        channels = [c for c in channels if c in self._held and link.connected]
        if not channels:
            return
        positions = {c: self._delivered[c] for c in channels if c in self._delivered}
        try:
            history = await read_history(self._commands, self._names, positions)
        except REDIS_ERRORS as exc:
            logger.warning("could not read the gap on %s (%s); reconnecting", link.node, exc)
            await link.close()
            return
        runs: Runs = []
        for channel, stream_id, frame in history.frames:
            if channel in self._held and stream_id > self._delivered.get(channel, (0, 0)):
                self._delivered[channel] = stream_id
                _append_run(runs, channel, frame)
        for channel in channels:
            current = self._interruptions.get(channel, 0) == epochs[channel]
            if current and self._placement.subscribed(self._names.pubsub_channel(channel), link):
                self._release_held(runs, channel)
                self._stale.discard(channel)
        self._fan_out(runs)
        self.stats.gaps_filled += 1
        logger.info(
            "gap filled on %s: %d events on %d channels", link.node, len(history.frames), len(channels)
        )

    def received(self, replies: Replies) -> None:
        runs: Runs = []
        for reply in replies:
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                if self._control is not None and reply[1] == self._control.channel:
                    self._control.received(reply[2])
                    continue
                channel = self._names.channel_of(reply[1])
                held = self._held.get(channel)
                if held is not None:
                    held.append(reply[2])
                elif channel in self._listeners:  # else it was left, and Redis has not heard yet
                    self._frame_into(runs, channel, reply[2])
            elif (kind == b"subscribe" or kind == b"ssubscribe") and (
                self._control is not None and reply[1] == self._control.channel
            ):
                self._control.subscribed()
        self._fan_out(runs)

    def _release_held(self, runs: Runs, channel: str) -> None:
        """The channel goes live: what was held back follows, less what was delivered meanwhile."""
        for payload in self._held.pop(channel, ()):
            self._frame_into(runs, channel, payload)

    def _channel_of(self, pubsub_channel: bytes) -> str | None:
        """The listeners' channel name, or None for the control channel."""
        if self._control is not None and pubsub_channel == self._control.channel:
            return None
        return self._names.channel_of(pubsub_channel)

    def _fan_out(self, runs: Runs) -> None:
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

    def _frame_into(self, runs: Runs, channel: str, payload: bytes) -> None:
        """Encodes one message into its frame, once for all listeners, unless it is bad or a duplicate."""
        self.stats.messages_received += 1
        try:
            if len(payload) > self._settings.max_payload_bytes + _ENVELOPE_OVERHEAD:
                raise EnvelopeError(f"{len(payload)} bytes, over the limit")
            envelope = parse_envelope(payload)
            stream_id = parse_stream_id(envelope.id)
        except (EnvelopeError, ValueError) as exc:
            self.stats.messages_rejected += 1
            logger.warning("rejected a message on %r: %s", channel, exc)
            return
        delivered = self._delivered.get(channel)
        if delivered is not None and stream_id <= delivered:
            self.stats.duplicates_dropped += 1  # delivered already, from the stream after a reconnect
            return
        self._delivered[channel] = stream_id
        # The id's first part is Redis's clock when the event was published.
        self.latency.observe(max(0.0, time.time() - stream_id[0] / 1000))
        _append_run(runs, channel, encode_frame(channel, envelope))


def _append_run(runs: Runs, channel: str, frame: bytes) -> None:
    """Consecutive frames of one channel are joined into one chunk per listener."""
    if runs and runs[-1][0] == channel:
        runs[-1][1].append(frame)
    else:
        runs.append((channel, [frame]))
