"""One channel as the hub keeps it: its listeners, its phase, what it has delivered and what it holds back."""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import TYPE_CHECKING

from .protocol import StreamId

if TYPE_CHECKING:
    from .subscriber import Subscriber

# Live messages a channel holds back while it fills its gap. Past this the held messages are dropped
# and the fill reads them from the stream instead (they are all there): memory stays bounded.
HELD_LIMIT_BYTES = 4 << 20


class Phase(Enum):
    """Where a channel's subscription stands (hub.py's docstring draws the transitions)."""

    SUBSCRIBING = "subscribing"  # asked of Redis, not confirmed yet; live messages cannot arrive
    FILLING = "filling"  # confirmed; what was missed, or where the channel stands, is being read
    LIVE = "live"  # live messages are delivered as they arrive


class ChannelState:
    """Each transition is one method; `since` tells how long the current phase has lasted."""

    __slots__ = (
        "delivered",
        "epoch",
        "filling",
        "held",
        "held_bytes",
        "listeners",
        "name",
        "overflowed",
        "phase",
        "pubsub",
        "ready",
        "since",
        "write_delay",
    )

    def __init__(self, name: str, pubsub: bytes, write_delay: float = 0.0) -> None:
        self.name = name
        self.pubsub = pubsub
        # Seconds within which its events go out to each stream in one write (its prefix's policy).
        self.write_delay = write_delay
        self.listeners: set[Subscriber] = set()
        self.phase = Phase.SUBSCRIBING
        self.since = time.monotonic()
        # The newest id delivered to the listeners; None until the channel's position is first read.
        self.delivered: StreamId | None = None
        # Live messages that arrived while FILLING, released in order once the channel is live.
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.overflowed = False
        # Counts phase changes: a fill that began in an older epoch leaves the channel alone.
        self.epoch = 0
        # Whether a fill is reading for this channel (False: it failed; the periodic check retries).
        self.filling = False
        # Done once the channel first goes live: a new channel's first listeners wait on it.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def subscribing(self) -> None:
        """The subscription broke, moved, or is asked again: nothing arrives until it is confirmed.

        What was held is in the channel's stream, after `delivered`, so the next fill reads it.
        """
        self._enter(Phase.SUBSCRIBING)

    def confirmed(self) -> int:
        """Redis confirmed the subscription: from now on live messages arrive, and are held back
        while the gap since `delivered` is read. Returns the epoch the fill belongs to."""
        self._enter(Phase.FILLING)
        self.filling = True
        return self.epoch

    def hold(self, payload: bytes) -> None:
        if self.overflowed:
            return
        self.held.append(payload)
        self.held_bytes += len(payload)
        if self.held_bytes > HELD_LIMIT_BYTES:
            self.overflowed = True
            self._drop_held()

    def refill(self) -> None:
        """The fill reads again, this time what overflowed the held messages."""
        self.overflowed = False

    def fill_failed(self) -> None:
        self.filling = False

    def live(self) -> list[bytes]:
        """The gap is filled: returns the held messages, to be delivered less what the fill delivered."""
        held = self.held
        self.held = []
        self.held_bytes = 0
        self.phase = Phase.LIVE
        self.since = time.monotonic()
        self.filling = False
        if not self.ready.done():
            self.ready.set_result(None)
        return held

    def advance(self, stream_id: StreamId) -> bool:
        """Records `stream_id` as delivered; False if it was delivered already."""
        if self.delivered is not None and stream_id <= self.delivered:
            return False
        self.delivered = stream_id
        return True

    def place_at(self, position: StreamId) -> None:
        """The channel's position was read: where a listener that asks for nothing older starts."""
        self.delivered = position if self.delivered is None else max(self.delivered, position)

    def current(self, epoch: int) -> bool:
        return self.epoch == epoch

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.since = time.monotonic()
        self.epoch += 1
        self.filling = False
        self.overflowed = False
        self._drop_held()

    def _drop_held(self) -> None:
        self.held = []
        self.held_bytes = 0
