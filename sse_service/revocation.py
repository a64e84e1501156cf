"""Closing the open streams of a user whose tickets Django revoked.

Django deletes the user's tickets and publishes `revoke-user <user id>` on `P:control`. The placement
keeps that channel subscribed beside the hub's and hands its messages here; every process closes that
user's streams at once (`End.REVOKED`). The browser reconnects, and without a ticket it gets a 401.

A stream whose ticket was read just before its user's revocation arrived is not registered yet when
the message is handled. So a stream registers with the moment (`mark`) before its ticket was read,
and one revoked since is closed as it registers.

A message published while this process's subscription is down never arrives. So whenever the
control channel is subscribed again, every stream opened with a user's ticket is closed: those whose
tickets are still valid reconnect at once, the revoked get their 401. Meanwhile nothing is delivered
to them either, as their events travel on the same subscription.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Protocol

from .ending import End
from .protocol import RedisNames

logger = logging.getLogger(__name__)

REVOKE_USER = "revoke-user"
# Revocations remembered for streams whose ticket was being read meanwhile (a read takes seconds at most).
RECENT = 4096


class Closable(Protocol):
    def close(self, end: End) -> None: ...


class Revocations:
    """The open streams of each user, and the recent revocations; the control channel's listener."""

    def __init__(self, key_prefix: str) -> None:
        self.channel = RedisNames(key_prefix).control_channel()
        self._streams: dict[str, set[Closable]] = {}
        # Counts revocations and resubscriptions: a `mark` is a moment.
        self._moment = 0
        self._revoked: OrderedDict[str, int] = OrderedDict()
        self._resubscribed = 0

    def mark(self) -> int:
        """Now, to be given to `add` by a stream about to read its ticket."""
        return self._moment

    def add(self, user: str, stream: Closable, mark: int) -> None:
        """Registers `stream`, or closes it if its user was revoked (or revocations were possibly
        missed) since `mark`."""
        if self._revoked.get(user, -1) > mark:
            stream.close(End.REVOKED)
        elif self._resubscribed > mark:
            stream.close(End.CONTROL_RESUBSCRIBED)
        else:
            self._streams.setdefault(user, set()).add(stream)

    def discard(self, user: str, stream: Closable) -> None:
        streams = self._streams.get(user)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[user]

    def received(self, data: bytes) -> None:
        """A control message. Runs in the subscription's reader, so it never raises."""
        command, _, user = data.decode("utf-8", "replace").partition(" ")
        if command != REVOKE_USER or not user or any(c.isspace() for c in user):
            logger.warning("ignoring an unknown control message: %r", data[:80])
            return
        self._moment += 1
        self._revoked[user] = self._moment
        self._revoked.move_to_end(user)
        if len(self._revoked) > RECENT:
            self._revoked.popitem(last=False)
        streams = self._streams.pop(user, set())
        logger.info("tickets of user %s revoked: closing %d stream(s)", user, len(streams))
        for stream in streams:
            stream.close(End.REVOKED)

    def subscribed(self) -> None:
        """The control channel is (again) subscribed: revocations may have been missed until now."""
        self._moment += 1
        self._resubscribed = self._moment
        streams = [stream for user_streams in self._streams.values() for stream in user_streams]
        self._streams.clear()
        if streams:
            logger.warning("control channel resubscribed: closing %d ticketed stream(s)", len(streams))
        for stream in streams:
            stream.close(End.CONTROL_RESUBSCRIBED)
