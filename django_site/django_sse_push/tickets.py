"""Subscription tickets: how the SSE service learns who may listen to private channels.

A ticket is a random token for the browser (cookie `sse_ticket` on /sse/, or `?ticket=` from other
origins) and, in Redis, `P:ticket:<sha256 hex of the token>` = `{"user": "<pk or empty>", "channels":
[...], "session": "<sha256 hex of the session key>"}` with a TTL of SSE_TICKET_TTL_SECONDS. Redis
holds only hashes, so a copy of Redis yields no usable token or session. The SSE service checks the
ticket when a stream opens; renewing means asking for a new one. `revoke_user_tickets` deletes all of
a user's tickets and tells every SSE process to close that user's streams; logging out does it.

A ticket request authenticated just before its session logged out may store its ticket after the
revocation has deleted the user's tickets. So logging out also leaves a mark, `P:ended-session:<sha256
hex of the session key>`, and the SSE service refuses any ticket naming that session. The mark lives
longer than such a ticket can: a ticket expires SSE_TICKET_TTL_SECONDS after its request arrived.

Permissions are checked by the caller (the ticket view uses django_sse_push.permissions.can_read_channel).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, get_client, is_cluster, publish_command
from django_sse_push.conf import push_settings
from django_sse_push.exceptions import TicketBackendError

logger = logging.getLogger(__name__)

COOKIE_NAME = "sse_ticket"
COOKIE_PATH = "/sse/"
REVOKE_USER = "revoke-user"
# How much longer than a ticket a logged-out session's mark lives: covers the time between a request's
# arrival and its authentication, which middleware may do before the ticket view starts its clock.
ENDED_SESSION_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Ticket:
    token: str
    channels: tuple[str, ...]
    expires_in: int


def issue_ticket(
    user: Any, channels: Sequence[str], *, session_key: str | None = None, asked_at: float | None = None
) -> Ticket:
    """Stores a new ticket for `channels` held by `user` (anonymous users get one with no user).

    `session_key`: the session that authenticated the request; its logout refuses the ticket.
    `asked_at`: when the request arrived (`time.monotonic()`), before it was authenticated; the
    ticket expires SSE_TICKET_TTL_SECONDS after that, so no ticket outlives its session's mark.
    """
    token = secrets.token_urlsafe(32)
    token_hash = _sha256(token)
    ttl: int = push_settings().TICKET_TTL_SECONDS
    if asked_at is not None:
        ttl -= int(time.monotonic() - asked_at)  # whole seconds: the mark's margin covers the rest
        if ttl < 1:
            raise TicketBackendError("the request took longer than a ticket lives; ask again")
    prefix: str = push_settings().KEY_PREFIX
    user_id = str(user.pk) if user.is_authenticated else ""
    stored: dict[str, Any] = {"user": user_id, "channels": list(channels)}
    if session_key:
        stored["session"] = _sha256(session_key)
    value = json.dumps(stored, separators=(",", ":"))
    try:
        client = get_client()
        # One Redis: the ticket and its entry in the user's set appear together (MULTI), so a
        # revocation that does not see the entry cannot find the ticket either. A cluster keeps
        # them on different nodes, where the two writes are ordered but not atomic.
        with client.pipeline(transaction=not is_cluster(client)) as pipe:
            pipe.set(keys.ticket_key(prefix, token_hash), value, ex=ttl)
            if user_id:
                tickets = keys.user_tickets_key(prefix, user_id)
                now = time.time()
                pipe.zadd(tickets, {token_hash: now + ttl})
                pipe.zremrangebyscore(tickets, "-inf", now)
                pipe.expire(tickets, ttl)
            pipe.execute()
    except REDIS_ERRORS as exc:
        raise TicketBackendError(f"could not store a ticket: {exc}") from exc
    return Ticket(token, tuple(channels), ttl)


def revoke_user_tickets(user: Any) -> int:
    """Deletes every ticket of `user` and has the SSE service close their open streams.

    Call it whenever a user loses access to channels they may be listening to. Returns how many
    live tickets were deleted; the close message is sent even if none were (open streams outlive
    their tickets).
    """
    prefix: str = push_settings().KEY_PREFIX
    user_id = str(user.pk)
    tickets = keys.user_tickets_key(prefix, user_id)
    deleted = 0
    try:
        client = get_client()
        # Until the set is seen empty: a ticket issued while this runs is deleted in the next
        # round rather than outliving the revocation (removing the whole set would forget it).
        while hashes := client.zrange(tickets, 0, -1):
            with client.pipeline(transaction=False) as pipe:
                for token_hash in hashes:
                    pipe.delete(keys.ticket_key(prefix, token_hash.decode()))
                pipe.zrem(tickets, *hashes)
                deleted += sum(pipe.execute()[: len(hashes)])
        client.execute_command(publish_command(), keys.control_channel(prefix), f"{REVOKE_USER} {user_id}")
    except REDIS_ERRORS as exc:
        raise TicketBackendError(f"could not revoke the tickets of user {user_id}: {exc}") from exc
    return deleted


def end_session(session_key: str) -> None:
    """Marks the session as logged out: the SSE service refuses every ticket it got, including one
    stored after this (its request was authenticated before the logout)."""
    ttl = push_settings().TICKET_TTL_SECONDS + ENDED_SESSION_MARGIN_SECONDS
    name = keys.ended_session_key(push_settings().KEY_PREFIX, _sha256(session_key))
    try:
        get_client().set(name, "1", ex=ttl)
    except REDIS_ERRORS as exc:
        raise TicketBackendError(f"could not mark a session as logged out: {exc}") from exc


def revoke_on_logout(sender: object, request: object, user: Any, **kwargs: object) -> None:
    """`user_logged_out` receiver: marks the session ended, then revokes the user's tickets. Logging
    out must not fail with Redis, so a failure is only logged."""
    if user is None or not user.is_authenticated:
        return
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    try:
        if session_key:
            end_session(session_key)
        revoke_user_tickets(user)
    except TicketBackendError:
        logger.exception("tickets of user %s not revoked at logout; they expire on their own", user.pk)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
