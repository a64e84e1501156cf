"""Which node carries each channel, with one `Link` per node kept open: the hub's subscriptions.

On one Redis every channel rides the one link. On a Redis Cluster a channel lives on the master that
owns its hash slot, so the placement follows the slot map: when a node gives a channel up (Redis ends
a sharded subscription itself after a slot migration or a failover), refuses one (MOVED: the map is
stale) or its link breaks, it reloads the map and places the channel again. Each interruption and
each resubscription is reported to the owner (the hub), which holds live messages back and fills the
gap from the channel's stream.

A channel a node gave up is not placed on that node again while the map still names it: a map read
from a node that has not heard of a failover yet names the demoted master, which, now a replica,
accepts the subscription but misses the shard's messages until its new master counts it as a replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from ._tasks import spawn
from .link import Link, Replies
from .redis_clients import REDIS_ERRORS, Topology

logger = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Owner(Protocol):
    """What the placement tells about the channels it carries (the hub)."""

    def received(self, replies: Replies) -> None: ...

    def confirmed(self, pubsub_channels: Iterable[bytes]) -> None:
        """Redis confirmed these channels' subscriptions where they are placed now."""

    def interrupted(self, pubsub_channels: Iterable[bytes], broken: bool) -> None:
        """These channels are not subscribed anywhere for now (`broken`: their link broke)."""


class ControlListener(Protocol):
    """Gets the messages of one extra channel kept subscribed beside the owner's (revocation.py's)."""

    channel: bytes

    def subscribed(self) -> None: ...

    def received(self, data: bytes) -> None: ...


class Placement:
    """The wanted channels, where each is subscribed, and a task per node keeping its link open."""

    def __init__(
        self,
        topology: Topology,
        owner: Owner,
        heartbeat_seconds: float,
        control: ControlListener | None = None,
    ) -> None:
        self._topology = topology
        self._owner = owner
        self._heartbeat_seconds = heartbeat_seconds
        self._control = control
        self._control_channel = control.channel if control is not None else None
        self._wanted: set[bytes] = set()
        self._links: dict[str, Link] = {}
        self._placed: dict[bytes, Link] = {}
        # Channels a node ended by itself, and that node, until `_replace` has read where they went.
        self._given_up: dict[bytes, str] = {}
        self._ready = False
        if self._control_channel is not None:
            self._wanted.add(self._control_channel)

    @property
    def connected(self) -> bool:
        return self._ready and all(link.connected for link in self._links.values())

    def add(self, pubsub_channels: list[bytes]) -> None:
        """Subscribes the channels; the owner hears when Redis confirms each (`confirmed`)."""
        self._wanted.update(pubsub_channels)
        self._place(pubsub_channels)

    def ask_again(self, pubsub_channels: list[bytes]) -> list[bytes]:
        """Channels Redis has not confirmed for long: placed again (their node may have changed)
        and subscribed again where they are. Returns those asked again: a link that is down
        subscribes everything once it is up, so its channels are left to it."""
        self._place(pubsub_channels)
        by_link: dict[Link, list[bytes]] = {}
        for pubsub_channel in pubsub_channels:
            link = self._placed.get(pubsub_channel)
            if link is not None and link.connected:
                by_link.setdefault(link, []).append(pubsub_channel)
        for link, channels in by_link.items():
            link.ask_again(channels)
        return [channel for channels in by_link.values() for channel in channels]

    def arrived(self, link: Link, replies: Replies, confirmed: list[bytes], control: list[bytes]) -> None:
        """A link's batch: the control channel's news to its listener, the rest to the owner."""
        if confirmed:
            if self._control is not None and self._control_channel in confirmed:
                self._control.subscribed()
            here = [c for c in confirmed if self._placed.get(c) is link and c != self._control_channel]
            if here:
                self._owner.confirmed(here)
        if self._control is not None:
            for data in control:
                self._control.received(data)
        self._owner.received(replies)

    def remove(self, pubsub_channels: Iterable[bytes]) -> None:
        for pubsub_channel in pubsub_channels:
            self._wanted.discard(pubsub_channel)
            link = self._placed.pop(pubsub_channel, None)
            if link is not None:
                link.remove([pubsub_channel])

    async def run(self) -> None:
        """Learns where channels live (retrying until Redis answers), then places every wanted channel."""
        failures = 0
        while True:
            try:
                await self._topology.refresh()
                break
            except REDIS_ERRORS as exc:
                delay = _backoff(failures)
                failures += 1
                logger.warning("redis unreachable (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
        self._ready = True
        self._place(self._wanted)

    async def keepalive(self) -> None:
        """Pings each link so a silently dead one is noticed within a few intervals; places stragglers."""
        interval = self._heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            self._place(self._wanted - self._placed.keys())
            for link in list(self._links.values()):
                if not link.connected:
                    continue
                if time.monotonic() - link.last_reply > 3 * interval:
                    logger.warning("redis %s silent for %.0fs, reconnecting", link.node, 3 * interval)
                    await link.close()
                else:
                    await link.ping()

    def _place(self, pubsub_channels: Iterable[bytes]) -> None:
        """Subscribes each channel on the link of the node that owns it, starting that link if new."""
        if not self._ready:
            return  # `run` places everything once it knows where channels live
        for pubsub_channel in list(pubsub_channels):
            node = self._node_of(pubsub_channel)
            if node is None:
                logger.warning("no redis node owns %r yet; keepalive tries again", pubsub_channel)
                continue
            if self._given_up.get(pubsub_channel) == node:
                continue  # a stale map: `_replace` places the channel once the map has moved
            placed = self._placed.get(pubsub_channel)
            if placed is not None:
                if placed.node == node:
                    continue
                placed.remove([pubsub_channel])
            link = self._links.get(node)
            if link is None:
                link = self._links[node] = Link(node, self._topology.sharded, self, self._control_channel)
                spawn(self._keep(link))
            self._placed[pubsub_channel] = link
            link.add([pubsub_channel])

    def _unplace(self, link: Link, pubsub_channels: list[bytes], dropped: bool = False) -> None:
        if dropped:
            link.forget(pubsub_channels)
        else:
            link.remove(pubsub_channels)
        for pubsub_channel in pubsub_channels:
            self._placed.pop(pubsub_channel, None)
        self._owner.interrupted(pubsub_channels, broken=False)

    async def _keep(self, link: Link) -> None:
        """Keeps one node's link open while it carries channels."""
        failures = 0
        while link.wanted:
            try:
                await link.open(self._topology.connection(link.node))
            except REDIS_ERRORS as exc:
                delay = _backoff(failures)
                failures += 1
                logger.warning("redis %s unreachable (%s), retrying in %.1fs", link.node, exc, delay)
                await asyncio.sleep(delay)
                await self._follow_slots(link)
                continue
            logger.info("redis subscription to %s connected, %d channels", link.node, len(link.wanted))
            opened = time.monotonic()
            try:
                await link.run()
            except REDIS_ERRORS as exc:
                logger.warning("redis subscription lost on %s (%s), reconnecting", link.node, exc)
            self._owner.interrupted(link.wanted, broken=True)
            # A link that keeps breaking as soon as it is made backs off like one that cannot connect.
            failures = failures + 1 if time.monotonic() - opened < 1.0 else 0
            await asyncio.sleep(_backoff(failures))
            await self._follow_slots(link)
        if self._links.get(link.node) is link:
            del self._links[link.node]
        await link.close()

    async def _follow_slots(self, link: Link) -> None:
        """On a cluster, moves `link`'s channels whose slots another node now owns (failover, resharding)."""
        if not self._topology.sharded or not await self._refresh():
            return
        moved = [c for c in link.wanted if self._node_of(c) not in (link.node, None)]
        if moved:
            logger.info("%d channels moved away from %s", len(moved), link.node)
            self._unplace(link, moved)
            self._place(moved)

    async def _refresh(self) -> bool:
        """Reloads the slot map; False (logged) if no node answered."""
        try:
            await self._topology.refresh()
        except REDIS_ERRORS as exc:
            logger.warning("could not refresh the cluster's slot map: %s", exc)
            return False
        return True

    def _node_of(self, pubsub_channel: bytes) -> str | None:
        """The channel's node, or None while its slot has no owner (mid-failover)."""
        try:
            return self._topology.node_of(pubsub_channel)
        except REDIS_ERRORS:
            return None

    def dropped(self, link: Link, pubsub_channel: bytes) -> None:
        """Redis ended a sharded subscription itself: the channel's slot has moved to another node."""
        self._given_up[pubsub_channel] = link.node
        self._unplace(link, [pubsub_channel], dropped=True)
        spawn(self._replace(pubsub_channel, link.node))

    def refused(self, link: Link) -> None:
        """A subscription was refused (MOVED: the slot map is stale): start the link over, which
        reloads the map and places every channel afresh."""
        spawn(link.close())

    async def _replace(self, pubsub_channel: bytes, old_node: str) -> None:
        """Places a channel its node gave up, once the slot map says where it went.

        Right after a failover, the node asked for the map may not know yet: ask again for a while.
        Until then no placement (a new listener, the keepalive, a channel asked again) puts the
        channel back on the node that gave it up; after the last try the map is taken as it is.
        """
        for delay in RECONNECT_DELAYS:
            if await self._refresh() and self._node_of(pubsub_channel) not in (old_node, None):
                break
            await asyncio.sleep(delay)
        if self._given_up.get(pubsub_channel) == old_node:
            del self._given_up[pubsub_channel]
        if pubsub_channel in self._wanted and pubsub_channel not in self._placed:
            self._place([pubsub_channel])


def _backoff(failures: int) -> float:
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
