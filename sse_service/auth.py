"""Who may listen to what: the public/private rule, and the tickets Django issues for private channels.

A channel is public iff its prefix's policy says so (policies.py); every other channel is private.
Django decides who may hear a private channel and records the decision as a ticket: a random token
the browser holds (cookie `sse_ticket`, or query parameter `ticket`) and Redis holds only as
`P:ticket:<sha256 hex of the token>` = `{"user": "<id or empty>", "channels": [...], "session":
"<sha256 hex of the Django session, optional>", "name": "<display name, optional>"}`, with a TTL. A
ticket whose session has logged out (`P:ended-session:<that hex>` exists) is refused. This service
only reads tickets, once, when a stream opens (docs/security.md, "Security model").
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .exceptions import Refused
from .protocol import RedisNames
from .redis_clients import REDIS_ERRORS, CommandClient

logger = logging.getLogger(__name__)

TICKET_COOKIE = "sse_ticket"
TICKET_PARAM = "ticket"
# secrets.token_urlsafe(32) gives 43 characters; anything far off that is not a ticket.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


@dataclass(frozen=True, slots=True)
class Grant:
    """A valid ticket that allows every private channel asked for."""

    user: str  # empty for a ticket issued to an anonymous visitor
    ticket_hash: str
    # The display name Django's hook gave the user (presence); empty when it gave none.
    name: str = ""

    @property
    def holder(self) -> str:
        """Who connection limits count against: the user, or the ticket when there is none."""
        return f"user:{self.user}" if self.user else f"ticket:{self.ticket_hash}"


def ticket_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ticket_key(prefix: str, token: str) -> str:
    return RedisNames(prefix).ticket_key(ticket_hash(token))


def ticket_from(query: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The query parameter wins: it is what the client chose for this URL, the cookie is ambient."""
    return query.get(TICKET_PARAM) or cookies.get(TICKET_COOKIE) or None


async def check_ticket(
    client: CommandClient, prefix: str, token: str | None, private: Sequence[str]
) -> Grant:
    """Returns the grant for `token`, or raises Refused: 401 without a valid ticket, 403 for a channel
    the ticket does not list, 503 when Redis cannot be asked."""
    if not token:
        raise Refused(401, f"a ticket is required for private channel {private[0]}\n")
    if not _TOKEN.fullmatch(token):
        raise Refused(401, "ticket expired or unknown\n")
    digest = ticket_hash(token)
    try:
        raw = await client.get(RedisNames(prefix).ticket_key(digest))
    except REDIS_ERRORS as exc:
        logger.warning("cannot check a ticket: %s", exc)
        raise Refused(503, "tickets cannot be checked right now; retry later\n") from None
    ticket = _parse(raw) if raw is not None else None
    if ticket is None:
        raise Refused(401, "ticket expired or unknown\n")
    missing = [channel for channel in private if channel not in ticket.channels]
    if missing:
        raise Refused(403, f"the ticket does not allow private channel {missing[0]}\n")
    if ticket.session and await _session_ended(client, prefix, ticket.session):
        raise Refused(401, "ticket revoked: its session logged out\n")
    return Grant(ticket.user, digest, ticket.name)


# A display name longer than this is cut: it is written to Redis for every channel listed.
MAX_NAME = 150


@dataclass(frozen=True, slots=True)
class _Ticket:
    user: str
    channels: frozenset[str]
    # The sha256 hex of the Django session that asked for it, if any.
    session: str
    # The user's display name, for presence; empty when Django gave none.
    name: str


async def _session_ended(client: CommandClient, prefix: str, session: str) -> bool:
    """A ticket stored after its session's logout had revoked the user's tickets (the request was
    authenticated before): the logout left this mark, which outlives any such ticket."""
    try:
        return bool(await client.exists(RedisNames(prefix).ended_session_key(session)))
    except REDIS_ERRORS as exc:
        logger.warning("cannot check a ticket's session: %s", exc)
        raise Refused(503, "tickets cannot be checked right now; retry later\n") from None


def _parse(raw: bytes | str) -> _Ticket | None:
    try:
        ticket = json.loads(raw)
        user, channels, session = ticket["user"], ticket["channels"], ticket.get("session", "")
        name = ticket.get("name", "")
    except (ValueError, TypeError, KeyError, AttributeError):
        ticket = user = channels = session = name = None
    if not isinstance(user, str) or not isinstance(channels, list) or not isinstance(session, str):
        logger.warning("ignoring a malformed ticket: %r", raw[:80])
        return None
    name = name[:MAX_NAME] if isinstance(name, str) else ""
    return _Ticket(user, frozenset(c for c in channels if isinstance(c, str)), session, name)
