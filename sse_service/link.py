"""One pub/sub connection to one Redis node, read by one task that sees every disconnect.

It is redis-py's low-level `Connection`, not `PubSub`: `PubSub` reconnects and resubscribes by itself,
silently, and whatever was published meanwhile is gone. Here a broken connection ends `run`, and the
hub decides what follows (reconnect, follow the slot map, fill the gap from the streams).

Reading is batched: every reply Redis has already delivered is read into one batch (a read that would
have to wait ends it: see `_eager`), and the batch goes to the hub in one call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from typing import Any, Protocol

from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ._eager import EagerCoroutine
from ._tasks import spawn
from .redis_clients import REDIS_ERRORS

logger = logging.getLogger(__name__)

Replies = list[list[Any]]


class LinkOwner(Protocol):
    """Told what arrives, and when Redis changes a subscription by itself."""

    def arrived(self, link: Link, replies: Replies, confirmed: list[bytes], control: list[bytes]) -> None:
        """A batch of replies; among them the channels Redis confirmed and the control messages."""

    def dropped(self, link: Link, channel: bytes) -> None:
        """Redis ended a sharded subscription on its own: the channel's slot moved away."""

    def refused(self, link: Link) -> None:
        """Redis answered a subscription with an error (MOVED: the slot is elsewhere)."""


class Link:
    """The subscription of one node: which channels it should carry, and the socket that carries them.

    `wanted` survives the socket: after a reconnect every wanted channel is subscribed again.
    Confirmations (`subscribe`/`ssubscribe` replies) are reported with each batch. Messages on the
    `control` channel are picked out here, so the hub's loop sees only its own channels'.
    """

    def __init__(self, node: str, sharded: bool, owner: LinkOwner, control: bytes | None = None) -> None:
        self.node = node
        self._owner = owner
        self._control = control
        self.wanted: set[bytes] = set()
        self.confirmed: set[bytes] = set()
        self.last_reply = 0.0
        self._sharded = sharded
        self._subscribe = b"SSUBSCRIBE" if sharded else b"SUBSCRIBE"
        self._unsubscribe = b"SUNSUBSCRIBE" if sharded else b"UNSUBSCRIBE"
        self._connection: Connection | None = None
        self._write_lock = asyncio.Lock()
        # Unsubscriptions sent and not yet answered: any other `sunsubscribe` is Redis's own doing.
        self._unsubscribing: dict[bytes, int] = {}

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def open(self, connection: Connection) -> None:
        """Connects and subscribes every wanted channel."""
        await connection.connect()  # type: ignore[no-untyped-call]
        self._connection = connection
        self.last_reply = time.monotonic()
        await self._send_subscribe(self.wanted)

    async def run(self) -> None:
        """Reads until the connection breaks, then raises (one of REDIS_ERRORS)."""
        connection = self._connection
        assert connection is not None
        try:
            batch: Replies = []
            read = EagerCoroutine(self._read(connection))
            while True:
                batch.append(await read)
                while True:
                    try:
                        read = EagerCoroutine(self._read(connection))
                    except BaseException:
                        self._deliver(batch)
                        raise
                    if not read.done:
                        break
                    batch.append(read.result())
                self._deliver(batch)
                batch = []
        finally:
            self._lost(connection)

    def _deliver(self, batch: Replies) -> None:
        self.last_reply = time.monotonic()
        confirmed: list[bytes] = []
        control: list[bytes] = []
        control_channel = self._control
        for reply in batch:
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                if reply[1] == control_channel:
                    control.append(reply[2])
            elif kind == b"subscribe" or kind == b"ssubscribe":
                self.confirmed.add(reply[1])
                confirmed.append(reply[1])
            elif kind == b"sunsubscribe":
                self._unsubscribed(reply[1])
            elif kind == b"error":
                self._owner.refused(self)
        if control:
            batch = [reply for reply in batch if reply[1] != control_channel]
        self._owner.arrived(self, batch, confirmed, control)

    def _unsubscribed(self, channel: bytes) -> None:
        pending = self._unsubscribing.get(channel, 0)
        if pending > 1:
            self._unsubscribing[channel] = pending - 1
        elif pending == 1:
            del self._unsubscribing[channel]
        elif channel in self.wanted:  # not our own request's answer: news
            self._owner.dropped(self, channel)

    async def _read(self, connection: Connection) -> Any:
        try:
            reply = await connection.read_response(timeout=math.inf, disconnect_on_error=False)
        except ResponseError as exc:
            # An error reply, e.g. MOVED for a slot this node gave away: the connection is fine.
            logger.warning("redis %s refused a subscription: %s %s", self.node, type(exc).__name__, exc)
            return [b"error", str(exc).encode()]
        if reply is None:
            raise RedisConnectionError("connection closed")
        return reply

    def add(self, channels: list[bytes]) -> None:
        """Wants `channels`; Redis's confirmations arrive with the replies."""
        new = [channel for channel in channels if channel not in self.wanted]
        self.wanted.update(new)
        if new and self._connection is not None:
            spawn(self._send_subscribe(new))

    def ask_again(self, channels: list[bytes]) -> None:
        """Subscribes wanted channels again (harmless if they are: Redis confirms once more)."""
        again = [channel for channel in channels if channel in self.wanted]
        if again and self._connection is not None:
            spawn(self._send_subscribe(again))

    def remove(self, channels: list[bytes]) -> None:
        gone = self.forget(channels)
        if gone and self._connection is not None:
            if self._sharded:
                for channel in gone:
                    self._unsubscribing[channel] = self._unsubscribing.get(channel, 0) + 1
            spawn(self._send(self._unsubscribe, gone))

    def forget(self, channels: list[bytes]) -> list[bytes]:
        """Stops wanting `channels` without telling Redis, which has already dropped them."""
        gone = [channel for channel in channels if channel in self.wanted]
        self.wanted.difference_update(gone)
        self.confirmed.difference_update(gone)
        return gone

    async def ping(self) -> None:
        await self._send(b"PING", [])

    async def close(self) -> None:
        connection = self._connection
        if connection is not None:
            await connection.disconnect(nowait=True)

    async def _send_subscribe(self, channels: Iterable[bytes]) -> None:
        if not self._sharded:
            await self._send(self._subscribe, [c for c in channels if c in self.wanted])
            return
        # A sharded subscription takes channels of one slot only: one command per channel, each
        # still wanted when its turn comes.
        for channel in list(channels):
            if channel in self.wanted:
                await self._send(self._subscribe, [channel])

    async def _send(self, command: bytes, args: list[bytes]) -> None:
        connection = self._connection
        # Never let a write reconnect the socket behind the reader's back: redis-py would do so
        # silently, and messages published meanwhile would be lost without anyone noticing.
        if connection is None or not connection.is_connected:
            return
        if command != b"PING" and not args:
            return
        async with self._write_lock:
            try:
                await connection.send_command(command, *args, check_health=False)
            except REDIS_ERRORS as exc:
                # The reader sees the same broken connection and ends; nothing to do here.
                logger.debug("redis command %s failed: %s", command, exc)

    def _lost(self, connection: Connection) -> None:
        self._connection = None
        self.confirmed.clear()
        self._unsubscribing.clear()
        spawn(connection.disconnect(nowait=True))
