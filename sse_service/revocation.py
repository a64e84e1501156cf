"""Closing the open streams of a user whose tickets Django revoked.

Django deletes the user's tickets and publishes `revoke-user <user id>` on `P:control`. The hub keeps
that channel subscribed on its one pub/sub connection and hands its messages here; every process
closes that user's streams at once (reason "revoked"). The browser reconnects, and without a ticket
it gets a 401.

A message published while this process's subscription is down never arrives. So whenever the
control channel is subscribed again, every stream opened with a user's ticket is closed: those whose
tickets are still valid reconnect at once, the revoked get their 401. Meanwhile nothing is delivered
to them either, as their events travel on the same subscription.
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)

REVOKE_USER = "revoke-user"


class Closable(Protocol):
    def close(self, reason: str) -> None: ...


class Revocations:
    """The open streams of each user; the hub's listener for the control channel."""

    def __init__(self, key_prefix: str) -> None:
        self.channel = f"{key_prefix}:control".encode()
        self._streams: dict[str, set[Closable]] = {}

    def add(self, user: str, stream: Closable) -> None:
        self._streams.setdefault(user, set()).add(stream)

    def discard(self, user: str, stream: Closable) -> None:
        streams = self._streams.get(user)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[user]

    def received(self, data: bytes) -> None:
        """A control message. Runs in the hub's reader, so it never raises."""
        command, _, user = data.decode("utf-8", "replace").partition(" ")
        if command != REVOKE_USER or not user or any(c.isspace() for c in user):
            logger.warning("ignoring an unknown control message: %r", data[:80])
            return
        streams = self._streams.pop(user, set())
        logger.info("tickets of user %s revoked: closing %d stream(s)", user, len(streams))
        for stream in streams:
            stream.close("revoked")

    def subscribed(self) -> None:
        """The control channel is (again) subscribed: revocations may have been missed until now."""
        streams = [stream for user_streams in self._streams.values() for stream in user_streams]
        self._streams.clear()
        if streams:
            logger.warning("control channel resubscribed: closing %d ticketed stream(s)", len(streams))
        for stream in streams:
            stream.close("control channel resubscribed")
