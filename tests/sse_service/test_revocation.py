"""The revocation registry: who gets closed, and why."""

from __future__ import annotations

import logging

import pytest

from sse_service.ending import End
from sse_service.revocation import Revocations


class Stream:
    def __init__(self) -> None:
        self.reasons: list[End] = []

    def close(self, end: End) -> None:
        self.reasons.append(end)


def test_revoke_user_closes_only_that_users_streams() -> None:
    revocations = Revocations("sse")
    alice, alice2, bob = Stream(), Stream(), Stream()
    revocations.add("1", alice, revocations.mark())
    revocations.add("1", alice2, revocations.mark())
    revocations.add("2", bob, revocations.mark())
    revocations.received(b"revoke-user 1")
    assert (alice.reasons, alice2.reasons, bob.reasons) == ([End.REVOKED], [End.REVOKED], [])
    # Leaving afterwards, as a closed stream does, is harmless.
    revocations.discard("1", alice)
    revocations.received(b"revoke-user 1")
    assert alice.reasons == [End.REVOKED]


def test_a_stream_that_left_is_not_closed() -> None:
    revocations = Revocations("sse")
    stream = Stream()
    revocations.add("1", stream, revocations.mark())
    revocations.discard("1", stream)
    revocations.received(b"revoke-user 1")
    assert stream.reasons == []


def test_the_control_channel_is_under_the_key_prefix() -> None:
    assert Revocations("site7").channel == b"site7:control"


@pytest.mark.parametrize(
    "message", [b"revoke-user", b"revoke-user ", b"revoke-all 1", b"\xff\xfe", b"revoke-user 1 2", b""]
)
def test_unknown_control_messages_are_logged_and_ignored(
    message: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    revocations = Revocations("sse")
    stream = Stream()
    revocations.add("1", stream, revocations.mark())
    with caplog.at_level(logging.WARNING):
        revocations.received(message)
    assert stream.reasons == []
    assert "unknown control message" in caplog.text


def test_resubscribing_the_control_channel_closes_every_ticketed_stream() -> None:
    """Revocations published while the subscription was down are lost; the streams re-check instead."""
    revocations = Revocations("sse")
    streams = [Stream(), Stream(), Stream()]
    for user, stream in zip(("1", "1", "2"), streams, strict=True):
        revocations.add(user, stream, revocations.mark())
    revocations.subscribed()
    assert [s.reasons for s in streams] == [[End.CONTROL_RESUBSCRIBED]] * 3
    revocations.subscribed()
    assert [len(s.reasons) for s in streams] == [1, 1, 1]


def test_a_stream_whose_ticket_was_read_while_its_user_was_revoked_is_closed_as_it_registers() -> None:
    """Regression: a stream registered only after its ticket was read, so a revocation handled in
    between (the ticket read just before Django deleted it) missed it and the stream stayed open."""
    revocations = Revocations("sse")
    mark = revocations.mark()  # the ticket is read now, still valid
    revocations.received(b"revoke-user 1")
    late, other = Stream(), Stream()
    revocations.add("1", late, mark)
    revocations.add("2", other, mark)
    assert (late.reasons, other.reasons) == ([End.REVOKED], [])
    fresh = Stream()
    revocations.add("1", fresh, revocations.mark())  # a ticket read after the revocation was checked anew
    assert fresh.reasons == []
