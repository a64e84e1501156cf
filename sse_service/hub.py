"""The fan-out: one Redis subscription per process (one per node on a cluster), shared by every client.

Where the cost is. Measured on 2 vCPUs, the expensive part of fanning one message out to thousands of
browsers is waking a task per connection per message (an `asyncio.Queue` per client), not Python
itself. So nothing here wakes a task per connection:

- `Placement` keeps one `Link` per node; each link reads every reply Redis has already delivered
  into one batch. `Fanout` encodes each message into its `Frame` once, groups a batch's frames per
  channel into runs, and writes each run, framed once, to every connection from the reader's own
  task (`Subscriber.push_run`).
- With `SSE_WRITE_DELAY_MS` above 0, runs wait that long in one batch per channel (`fanout.py`),
  so a busy channel's events reach each connection as one write, not one per batch from Redis.
- Back-pressure: a connection whose socket has paused writing is parked behind a task of its own
  with a bounded backlog and, past that bound, is disconnected (it reconnects and resumes). The hub
  itself never waits for a client.
- One timer for the whole process (`run`) writes heartbeats to idle streams, cuts streams whose
  write has waited past the send timeout, starts ending the streams on server shutdown, and checks
  that no channel stays stuck in a phase.

Each channel is one `ChannelState` with a phase:

    (first listener) ──> SUBSCRIBING ──confirmed──> FILLING ──gap read──> LIVE
                            ^   │ ^                    │                   │
                            │   └─┘ stuck: asked again │                   │
                            └──── interrupted ─────────┴───────────────────┘
                          (link broke, slot moved or Redis dropped it)      (last listener: removed)

- SUBSCRIBING: Redis was asked to subscribe; nothing can arrive. A channel in it longer than
  `STUCK_AFTER` is placed and asked again (the slot map may have moved; a reply may be lost).
- FILLING: Redis confirmed; live messages now arrive and are held back while the channel's stream is
  read after `delivered` (the newest id its listeners got), in pages, straight to the listeners. A
  channel never placed before reads its newest id instead: where its first listeners start. Then
  the held messages follow, less any id already delivered, and the channel is LIVE. A fill that
  fails (Redis error) is retried by the periodic check; held messages past a bound are dropped and
  read from the stream again, so a long fill costs bounded memory.
- LIVE: messages are delivered as they arrive.
An interruption starts a new epoch: a fill from an older epoch leaves the channel to the next one.
Clients stay connected throughout, and get every event once, in order.

A stream starts (`attach` returns) once its channels' positions are known: when they go live, or,
if Redis does not confirm within `STUCK_AFTER`, once their newest ids are read directly; the fill
that follows the confirmation delivers what came after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable

from ._tasks import spawn
from .channels import ChannelState, Phase
from .drain import end_streams
from .ending import End
from .fanout import Fanout, append
from .history import newest_positions, read_pages, rewind_positions
from .link import Replies
from .placement import ControlListener, Placement
from .protocol import Frame, Positions, RedisNames
from .redis_clients import REDIS_ERRORS, CommandClient, Topology
from .settings import Settings
from .stats import HubStats
from .subscriber import Run, Subscriber

logger = logging.getLogger(__name__)

# How long a new channel's first listener waits for it to go live, and how long a channel may stay
# unconfirmed before it is asked again.
STUCK_AFTER = 5.0
# How often the hub's timer looks at shutdown and at stuck channels.
TICK_SECONDS = 0.5


class Hub:
    """Every channel's state and listeners; the owner of the placement's subscriptions."""

    def __init__(
        self,
        settings: Settings,
        commands: CommandClient,
        topology: Topology,
        control: ControlListener | None = None,
        server_exiting: Callable[[], bool] = lambda: False,
    ) -> None:
        self._settings = settings
        # A separate, ordinary client: a subscribed connection cannot run commands.
        self._commands = commands
        self._names = RedisNames(settings.key_prefix)
        self._placement = Placement(topology, self, settings.heartbeat_seconds, control)
        self._channels: dict[str, ChannelState] = {}
        self._by_pubsub: dict[bytes, ChannelState] = {}
        self._subscribers: set[Subscriber] = set()
        self._server_exiting = server_exiting
        self._exiting = False
        # A heartbeat that cannot be written for this long means the client is gone or stalled.
        self.send_timeout = max(settings.heartbeat_seconds, 5.0)
        self.stats = HubStats()
        self._fanout = Fanout(settings, self._channels, self.stats)
        self.latency = self._fanout.latency

    @property
    def connected(self) -> bool:
        return self._placement.connected

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    def phase_counts(self) -> dict[Phase, int]:
        counts = dict.fromkeys(Phase, 0)
        for state in self._channels.values():
            counts[state.phase] += 1
        return counts

    def listener_counts(self) -> dict[str, int]:
        return {name: len(state.listeners) for name, state in self._channels.items()}

    def serves(self, channel: str) -> bool:
        """Whether the channel is here already (the gate's `ChannelRoom` counts only new ones)."""
        return channel in self._channels

    async def attach(self, subscriber: Subscriber) -> Positions:
        """Registers `subscriber`; returns where each channel starts for it, once everything published
        after that will reach it. When no position can be had, the subscriber is closed
        (`End.REDIS_UNAVAILABLE`): the client retries."""
        self.stats.connections += 1
        self._subscribers.add(subscriber)
        if self._exiting:
            subscriber.close(End.SERVER_SHUTDOWN)
            return {}
        states, new = [], []
        for name in subscriber.channels:
            state = self._channels.get(name)
            if state is None:
                state = self._channels[name] = ChannelState(
                    name,
                    self._names.pubsub_channel(name),
                    self._settings.policies.write_delay_seconds(name, self._settings.write_delay_ms),
                )
                self._by_pubsub[state.pubsub] = state
                new.append(state.pubsub)
            state.listeners.add(subscriber)
            states.append(state)
        if new:
            self._placement.add(new)
        unplaced = [state for state in states if state.delivered is None]
        if unplaced:
            await asyncio.wait([state.ready for state in unplaced], timeout=STUCK_AFTER)
            unplaced = [state for state in unplaced if state.delivered is None]
        if unplaced:
            try:
                newest = await newest_positions(self._commands, self._names, [s.name for s in unplaced])
            except REDIS_ERRORS as exc:
                logger.warning("no start position for %s: %s", ",".join(s.name for s in unplaced), exc)
                subscriber.close(End.REDIS_UNAVAILABLE)
                return {}
            for state in unplaced:
                state.place_at(newest[state.name])
        return {state.name: state.delivered for state in states if state.delivered is not None}

    def history(self, positions: Positions) -> AsyncIterator[list[Frame]]:
        """What came after `positions`, in pages of about what a connection may have waiting."""
        settings = self._settings
        return read_pages(
            self._commands, self._names, positions, settings.send_buffer_bytes, settings.max_payload_bytes
        )

    async def rewind_positions(self, counts: dict[str, int]) -> Positions:
        """Per channel, the position before its last `counts[channel]` events (history.py)."""
        return await rewind_positions(self._commands, self._names, counts)

    def detach(self, subscriber: Subscriber) -> None:
        self.stats.connections -= 1
        self._subscribers.discard(subscriber)
        gone = []
        for name in subscriber.channels:
            state = self._channels.get(name)
            if state is None:
                continue
            state.listeners.discard(subscriber)
            if not state.listeners:
                del self._channels[name]
                del self._by_pubsub[state.pubsub]
                gone.append(state.pubsub)
        self._placement.remove(gone)

    def shutdown(self) -> None:
        """Ends every stream, paced the first time (`drain.py`); new streams end as they start."""
        end_streams(list(self._subscribers), 0.0 if self._exiting else self._settings.drain_seconds)
        self._exiting = True

    async def run(self) -> None:
        """Keeps the subscriptions and the timer for the life of the process."""
        await asyncio.gather(self._placement.run(), self._placement.keepalive(), self._tick())

    # What the placement reports.

    def received(self, replies: Replies) -> None:
        runs: list[Run] = []
        by_pubsub = self._by_pubsub
        for reply in replies:
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                state = by_pubsub.get(reply[1])
                if state is None:
                    continue  # left, and Redis has not heard yet
                if state.phase is Phase.LIVE:
                    # Behind a write delay the event's latency is observed when it is written.
                    self._fanout.frame_into(runs, state, reply[2], timed=not state.write_delay)
                else:
                    state.hold(reply[2])
        self._fanout.deliver(runs)

    def confirmed(self, pubsub_channels: Iterable[bytes]) -> None:
        """Redis confirmed these subscriptions: fill each channel that was waiting for it."""
        confirmed = []
        for pubsub_channel in pubsub_channels:
            state = self._by_pubsub.get(pubsub_channel)
            if state is not None and state.phase is Phase.SUBSCRIBING:
                confirmed.append((state, state.confirmed()))
        if confirmed:
            spawn(self._fill(confirmed))

    def interrupted(self, pubsub_channels: Iterable[bytes], broken: bool) -> None:
        """These channels are subscribed nowhere for now (`broken`: their link broke)."""
        if broken:
            self.stats.redis_reconnects += 1
        for pubsub_channel in pubsub_channels:
            state = self._by_pubsub.get(pubsub_channel)
            if state is not None:
                state.subscribing()

    # Filling.

    async def _fill(self, fills: list[tuple[ChannelState, int]]) -> None:
        """Reads what the channels missed (or where they stand), delivers it, then their held messages.

        Only channels still in the epoch the fill began in are touched: one interrupted meanwhile
        belongs to the fill that follows its next confirmation, and a page read for it now could
        skip what that fill has not delivered yet.
        """
        epochs = {state.name: (state, epoch) for state, epoch in fills}

        def current() -> list[ChannelState]:
            return [s for s, epoch in fills if s.current(epoch) and self._channels.get(s.name) is s]

        had_gap = any(state.delivered is not None for state, _ in fills)
        delivered = 0
        try:
            unplaced = [state for state in current() if state.delivered is None]
            if unplaced:
                newest = await newest_positions(self._commands, self._names, [s.name for s in unplaced])
                for state in current():
                    if state.name in newest:
                        state.place_at(newest[state.name])
            reading = current()
            while reading:
                for state in reading:
                    state.refill()
                positions = {s.name: s.delivered for s in reading if s.delivered is not None}
                async for frames in self.history(positions):
                    delivered += self._deliver_history(frames, epochs)
                    if not current():
                        return
                reading = [state for state in current() if state.overflowed]
        except REDIS_ERRORS as exc:
            logger.warning("could not read the gap of %d channels (%s); retrying", len(fills), exc)
            for state in current():
                state.fill_failed()
            return
        runs: list[Run] = []
        states = current()
        for state in states:
            for payload in state.live():
                self._fanout.frame_into(runs, state, payload)
        self._fanout.release_held()
        self._fanout.write(runs)
        if had_gap and states:
            self.stats.gaps_filled += 1
            logger.info("gap filled: %d events on %d channels", delivered, len(states))

    def _deliver_history(self, frames: list[Frame], epochs: dict[str, tuple[ChannelState, int]]) -> int:
        """One page of a fill, to the listeners of the channels still in the fill's epoch; returns
        how many frames were new."""
        runs: list[Run] = []
        count = 0
        for frame in frames:
            state, epoch = epochs[frame.channel]
            if (
                state.current(epoch)
                and self._channels.get(frame.channel) is state
                and state.advance(frame.id)
            ):
                append(runs, frame)
                count += 1
        # Live runs still waiting out the write delay were delivered before this page was read.
        self._fanout.release_held()
        self._fanout.write(runs)
        return count

    # The timer.

    async def _tick(self) -> None:
        beat_every = self._settings.heartbeat_seconds / 2  # see Subscriber.beat
        next_beat = time.monotonic() + beat_every
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if not self._exiting and self._server_exiting():
                logger.info("server shutting down: ending %d streams", len(self._subscribers))
                self.shutdown()
            now = time.monotonic()
            self._check_phases(now)
            if now >= next_beat:
                next_beat = now + beat_every
                self._beat(now)

    def _beat(self, now: float) -> None:
        for subscriber in list(self._subscribers):
            subscriber.beat(now, self.send_timeout)

    def _check_phases(self, now: float) -> None:
        """A channel unconfirmed too long is asked again; one whose fill failed is filled again."""
        stuck, unfilled = [], []
        for state in self._channels.values():
            if state.phase is Phase.SUBSCRIBING and now - state.since > STUCK_AFTER:
                state.subscribing()
                stuck.append(state.pubsub)
            elif state.phase is Phase.FILLING and not state.filling and now - state.since > TICK_SECONDS:
                unfilled.append((state, state.confirmed()))
        if stuck and (asked := self._placement.ask_again(stuck)):
            self.stats.channels_asked_again += len(asked)
            logger.warning("%d channels unconfirmed for %.0fs: asking again", len(asked), STUCK_AFTER)
        if unfilled:
            spawn(self._fill(unfilled))
