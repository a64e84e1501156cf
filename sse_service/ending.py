"""Why a stream ended: each a name the code matches on, and the words its log line uses."""

from __future__ import annotations

from enum import Enum


class End(Enum):
    CLIENT_LEFT = "client left"
    SLOW_CONSUMER = "slow consumer"
    WRITE_FAILED = "write failed"
    REVOKED = "revoked"
    CONTROL_RESUBSCRIBED = "control channel resubscribed"
    SERVER_SHUTDOWN = "server shutdown"
    REDIS_UNAVAILABLE = "redis unavailable"
    HISTORY_UNAVAILABLE = "history unavailable"

    @property
    def by_client(self) -> bool:
        """The client went away: nothing more can be written to it."""
        return self is End.CLIENT_LEFT

    @property
    def stalled(self) -> bool:
        """The socket takes nothing: the stream ends without its closing chunk, which would never leave."""
        return self is End.SLOW_CONSUMER
