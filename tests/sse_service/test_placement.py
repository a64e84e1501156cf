"""Where the placement sends what a link reads: driven with links that never connect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sse_service.link import Link, Replies
from sse_service.placement import Placement


class Owner:
    def __init__(self) -> None:
        self.replies: Replies = []
        self.confirmed_channels: list[bytes] = []
        self.interrupted_channels: list[bytes] = []

    def received(self, replies: Replies) -> None:
        self.replies += replies

    def confirmed(self, pubsub_channels: Iterable[bytes]) -> None:
        self.confirmed_channels += pubsub_channels

    def interrupted(self, pubsub_channels: Iterable[bytes], broken: bool) -> None:
        self.interrupted_channels += pubsub_channels


class Control:
    channel = b"sse:control"

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.subscriptions = 0

    def subscribed(self) -> None:
        self.subscriptions += 1

    def received(self, data: bytes) -> None:
        self.messages.append(data)


class NeverConnects:
    async def connect(self) -> None:
        await asyncio.Event().wait()


class OneNode:
    """Every channel on node "a", whose link never connects."""

    sharded = False

    def node_of(self, pubsub_channel: bytes) -> str:
        return "a"

    async def refresh(self) -> None:
        pass

    def connection(self, node: str) -> NeverConnects:
        return NeverConnects()


def placement(owner: Owner, control: Control | None = None) -> Placement:
    result = Placement(OneNode(), owner, 1.0, control)  # type: ignore[arg-type]
    result._ready = True
    return result


async def test_the_control_channel_goes_to_its_listener_never_to_the_owner() -> None:
    owner, control = Owner(), Control()
    placed = placement(owner, control)
    link = Link("a", False, placed, control.channel)
    link._deliver(
        [
            [b"subscribe", b"sse:control", 1],
            [b"message", b"sse:control", b"revoke-user 7"],
            [b"message", b"sse:{news}", b"v1\n1-0\n\n{}"],
        ]
    )
    assert control.messages == [b"revoke-user 7"]
    assert control.subscriptions == 1
    assert owner.confirmed_channels == []
    assert owner.replies == [[b"message", b"sse:{news}", b"v1\n1-0\n\n{}"]]


async def test_a_confirmation_counts_only_from_the_link_the_channel_is_placed_on() -> None:
    owner = Owner()
    placed = placement(owner)
    placed.add([b"sse:{news}"])
    here = placed._links["a"]
    elsewhere = Link("b", False, placed)
    elsewhere._deliver([[b"subscribe", b"sse:{news}", 1]])
    assert owner.confirmed_channels == []
    here._deliver([[b"subscribe", b"sse:{news}", 1]])
    assert owner.confirmed_channels == [b"sse:{news}"]


async def test_a_channel_removed_is_no_longer_confirmed() -> None:
    owner = Owner()
    placed = placement(owner)
    placed.add([b"sse:{news}"])
    link = placed._links["a"]
    placed.remove([b"sse:{news}"])
    link._deliver([[b"subscribe", b"sse:{news}", 1]])
    assert owner.confirmed_channels == []
    assert b"sse:{news}" not in link.wanted


class FailingOver:
    """Channels live on "old" until the map is told they moved to "new"; links never connect."""

    sharded = True

    def __init__(self) -> None:
        self.owner = "old"

    def node_of(self, pubsub_channel: bytes) -> str:
        return self.owner

    async def refresh(self) -> None:
        pass

    def connection(self, node: str) -> NeverConnects:
        return NeverConnects()


async def test_a_demoted_master_never_gets_back_the_channel_it_dropped_from_a_stale_slot_map() -> None:
    """Regression: after a manual failover the old master, now a replica, ends its sharded
    subscriptions (`sunsubscribe`), and the slot map read right after may still name it (the node
    asked has not heard yet). While the placement waited for a fresh map, the keepalive placed the
    channel again from the stale one, on the old master. A replica accepts SSUBSCRIBE for its
    master's slots but hears the shard's messages only once its new master counts it as a replica:
    the hub went live there and its clients missed a second of events, the stream still open."""
    owner = Owner()
    topology = FailingOver()
    placed = Placement(topology, owner, 0.01)  # type: ignore[arg-type]
    placed._ready = True
    placed.add([b"sse:{news}"])
    old = placed._links["old"]
    keepalive = asyncio.create_task(placed.keepalive())
    try:
        old._deliver([[b"sunsubscribe", b"sse:{news}", 0]])
        assert owner.interrupted_channels == [b"sse:{news}"]
        await asyncio.sleep(0.2)  # keepalives, the map still naming "old"
        assert b"sse:{news}" not in placed._placed
        assert all(b"sse:{news}" not in link.wanted for link in placed._links.values())
        topology.owner = "new"
        async with asyncio.timeout(2):
            while b"sse:{news}" not in placed._placed:
                await asyncio.sleep(0.01)
        assert placed._placed[b"sse:{news}"].node == "new"
        assert [node for node, link in placed._links.items() if b"sse:{news}" in link.wanted] == ["new"]
    finally:
        keepalive.cancel()
