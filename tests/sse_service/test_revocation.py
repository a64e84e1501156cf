"""The revocation registry: who gets closed, and why."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from sse_service.ending import End
from sse_service.revocation import Revocations


class Tickets:
    """The tickets Redis still holds, as `Revocations` looks them up."""

    def __init__(self, *alive: str) -> None:
        self.alive = set(alive)
        self.asked: list[list[str]] = []

    async def __call__(self, digests: Sequence[str]) -> list[bool]:
        self.asked.append(list(digests))
        return [digest in self.alive for digest in digests]


def registry() -> Revocations:
    return Revocations("sse", Tickets())


class Stream:
    def __init__(self) -> None:
        self.reasons: list[End] = []

    def close(self, end: End) -> None:
        self.reasons.append(end)


def test_revoke_user_closes_only_that_users_streams() -> None:
    revocations = registry()
    alice, alice2, bob = Stream(), Stream(), Stream()
    revocations.add("1", "t-1", alice, revocations.mark())
    revocations.add("1", "t-1", alice2, revocations.mark())
    revocations.add("2", "t-2", bob, revocations.mark())
    revocations.received(b"revoke-user 1")
    assert (alice.reasons, alice2.reasons, bob.reasons) == ([End.REVOKED], [End.REVOKED], [])
    # Leaving afterwards, as a closed stream does, is harmless.
    revocations.discard("1", alice)
    revocations.received(b"revoke-user 1")
    assert alice.reasons == [End.REVOKED]


def test_a_stream_that_left_is_not_closed() -> None:
    revocations = registry()
    stream = Stream()
    revocations.add("1", "t-1", stream, revocations.mark())
    revocations.discard("1", stream)
    revocations.received(b"revoke-user 1")
    assert stream.reasons == []


def test_the_control_channel_is_under_the_key_prefix() -> None:
    assert Revocations("site7", Tickets()).channel == b"site7:control"


@pytest.mark.parametrize(
    "message", [b"revoke-user", b"revoke-user ", b"revoke-all 1", b"\xff\xfe", b"revoke-user 1 2", b""]
)
def test_unknown_control_messages_are_logged_and_ignored(
    message: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    revocations = registry()
    stream = Stream()
    revocations.add("1", "t-1", stream, revocations.mark())
    with caplog.at_level(logging.WARNING):
        revocations.received(message)
    assert stream.reasons == []
    assert "unknown control message" in caplog.text


async def test_resubscribing_the_control_channel_closes_the_streams_whose_ticket_is_gone() -> None:
    """Revocations published while the subscription was down are lost; a ticket still in Redis once
    the channel is back cannot have been revoked unheard (Django deletes tickets, then publishes)."""
    tickets = Tickets("t-1")
    revocations = Revocations("sse", tickets)
    streams = [Stream(), Stream(), Stream()]
    for user, stream in zip(("1", "1", "2"), streams, strict=True):
        revocations.add(user, "t-" + user, stream, revocations.mark())
    revocations.subscribed()
    await asyncio.sleep(0.01)
    assert [s.reasons for s in streams] == [[], [], [End.CONTROL_RESUBSCRIBED]]
    revocations.subscribed()
    await asyncio.sleep(0.01)
    assert [len(s.reasons) for s in streams] == [0, 0, 1]
    assert tickets.asked == [["t-1", "t-1", "t-2"], ["t-1", "t-1"]]


async def test_a_stream_registered_with_a_mark_before_a_resubscription_has_its_ticket_looked_up() -> None:
    """Regression: a stream whose ticket was read just before the control channel came back after a
    Redis outage was closed 1 ms after it opened (`control channel resubscribed`), although its
    ticket, read after Redis was back, could not have been revoked unheard."""
    tickets = Tickets("t-1")
    revocations = Revocations("sse", tickets)
    mark = revocations.mark()
    revocations.subscribed()
    fresh, stale = Stream(), Stream()
    revocations.add("1", "t-1", fresh, mark)
    revocations.add("2", "t-2", stale, mark)
    await asyncio.sleep(0.01)
    assert (fresh.reasons, stale.reasons) == ([], [End.CONTROL_RESUBSCRIBED])
    revocations.received(b"revoke-user 1")
    assert fresh.reasons == [End.REVOKED]


def test_a_stream_whose_ticket_was_read_while_its_user_was_revoked_is_closed_as_it_registers() -> None:
    """Regression: a stream registered only after its ticket was read, so a revocation handled in
    between (the ticket read just before Django deleted it) missed it and the stream stayed open."""
    revocations = registry()
    mark = revocations.mark()  # the ticket is read now, still valid
    revocations.received(b"revoke-user 1")
    late, other = Stream(), Stream()
    revocations.add("1", "t-1", late, mark)
    revocations.add("2", "t-2", other, mark)
    assert (late.reasons, other.reasons) == ([End.REVOKED], [])
    fresh = Stream()
    revocations.add(
        "1", "t-1", fresh, revocations.mark()
    )  # a ticket read after the revocation was checked anew
    assert fresh.reasons == []
