"""Closing the open streams of a user whose tickets Django revoked.

Django deletes the user's tickets and publishes `revoke-user <user id>` on `P:control`. The placement
keeps that channel subscribed beside the hub's and hands its messages here; every process closes that
user's streams at once (`End.REVOKED`). The browser reconnects, and without a ticket it gets a 401.

A stream whose ticket was read just before its user's revocation arrived is not registered yet when
the message is handled. So a stream registers with the moment (`mark`) before its ticket was read,
and one revoked since is closed as it registers.

A message published while this process's subscription is down never arrives. So whenever the
control channel is subscribed again, each stream opened with a user's ticket has its ticket looked
up, and those whose ticket is gone are closed: the revoked get their 401 as they reconnect. A ticket
still there once the channel is subscribed again cannot have been revoked unheard, as Django deletes
a user's tickets before it publishes the revocation, and from now on that message arrives. So a
stream opened while the subscription was coming back (its ticket read just before) lives on, and
so do the others whose tickets have not expired. Meanwhile nothing is delivered to them either, as
their events travel on the same subscription.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ._tasks import spawn
from .ending import End
from .protocol import RedisNames
from .redis_clients import REDIS_ERRORS, CommandClient

logger = logging.getLogger(__name__)

REVOKE_USER = "revoke-user"
# Revocations remembered for streams whose ticket was being read meanwhile (a read takes seconds at most).
RECENT = 4096


class Closable(Protocol):
    def close(self, end: End) -> None: ...


# Which of these tickets (sha256 hex digests) are still in Redis.
TicketsAlive = Callable[[Sequence[str]], Awaitable[list[bool]]]


def tickets_in(client: CommandClient, key_prefix: str) -> TicketsAlive:
    """`TicketsAlive` asking `client`, in one round trip."""
    names = RedisNames(key_prefix)

    async def alive(digests: Sequence[str]) -> list[bool]:
        async with client.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.exists(names.ticket_key(digest))
            return [bool(found) for found in await pipe.execute()]

    return alive


class Revocations:
    """The open streams of each user, and the recent revocations; the control channel's listener."""

    def __init__(self, key_prefix: str, tickets_alive: TicketsAlive) -> None:
        self.channel = RedisNames(key_prefix).control_channel()
        self._tickets_alive = tickets_alive
        # Each user's open streams, with the ticket (digest) each was opened with.
        self._streams: dict[str, dict[Closable, str]] = {}
        # Counts revocations and resubscriptions: a `mark` is a moment.
        self._moment = 0
        self._revoked: OrderedDict[str, int] = OrderedDict()
        self._resubscribed = 0

    def mark(self) -> int:
        """Now, to be given to `add` by a stream about to read its ticket."""
        return self._moment

    def add(self, user: str, ticket: str, stream: Closable, mark: int) -> None:
        """Registers `stream`, opened with `ticket`, or closes it if its user was revoked since
        `mark`; if revocations may have been missed since, its ticket is looked up again."""
        if self._revoked.get(user, -1) > mark:
            stream.close(End.REVOKED)
            return
        self._streams.setdefault(user, {})[stream] = ticket
        if self._resubscribed > mark:
            spawn(self._close_unless_alive([(user, stream, ticket)]))

    def discard(self, user: str, stream: Closable) -> None:
        streams = self._streams.get(user)
        if streams is not None:
            streams.pop(stream, None)
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
        streams = self._streams.pop(user, {})
        logger.info("tickets of user %s revoked: closing %d stream(s)", user, len(streams))
        for stream in streams:
            stream.close(End.REVOKED)

    def subscribed(self) -> None:
        """The control channel is (again) subscribed: revocations may have been missed until now, so
        every registered stream's ticket is looked up."""
        self._moment += 1
        self._resubscribed = self._moment
        registered = [
            (user, stream, ticket)
            for user, streams in self._streams.items()
            for stream, ticket in streams.items()
        ]
        if registered:
            spawn(self._close_unless_alive(registered))

    async def _close_unless_alive(self, registered: list[tuple[str, Closable, str]]) -> None:
        """Closes the streams whose ticket is gone (revoked, or expired); all of them if Redis cannot
        tell."""
        try:
            alive = await self._tickets_alive([ticket for _, _, ticket in registered])
        except REDIS_ERRORS as exc:
            logger.warning("cannot look tickets up again (%s): closing their streams", exc)
            alive = [False] * len(registered)
        gone = [
            (user, stream)
            for (user, stream, _), ok in zip(registered, alive, strict=True)
            if not ok and stream in self._streams.get(user, {})
        ]
        if gone:
            logger.warning(
                "control channel resubscribed: closing %d stream(s) whose ticket is gone", len(gone)
            )
        for user, stream in gone:
            self.discard(user, stream)
            stream.close(End.CONTROL_RESUBSCRIBED)
