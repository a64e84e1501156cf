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
