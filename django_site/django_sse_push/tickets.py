"""Subscription tickets: how the SSE service learns who may listen to private channels.

A ticket is a random token for the browser (cookie `sse_ticket` on /sse/, or `?ticket=` from other
origins) and, in Redis, `P:ticket:<sha256 hex of the token>` = `{"user": "<pk or empty>", "channels":
[...], "name": "<display name>"}` with a TTL of SSE_TICKET_TTL_SECONDS; `name` (from the
SSE_DISPLAY_NAME hook, for presence) is left out for anonymous visitors and when the hook fails.
Redis holds only the hash, so a copy of Redis yields no usable token. The SSE service checks the
ticket when a stream opens; renewing means asking for a new one. `revoke_user_tickets` deletes all
of a user's tickets and tells every SSE process to close that user's streams; logging out does it.

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
from django_sse_push.presence import display_name

logger = logging.getLogger(__name__)

COOKIE_NAME = "sse_ticket"
COOKIE_PATH = "/sse/"
REVOKE_USER = "revoke-user"


@dataclass(frozen=True)
class Ticket:
    token: str
    channels: tuple[str, ...]
    expires_in: int


def issue_ticket(user: Any, channels: Sequence[str]) -> Ticket:
    """Stores a new ticket for `channels` held by `user` (anonymous users get one with no user)."""
    token = secrets.token_urlsafe(32)
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    ttl: int = push_settings().TICKET_TTL_SECONDS
    prefix: str = push_settings().KEY_PREFIX
    user_id = str(user.pk) if user.is_authenticated else ""
    ticket: dict[str, object] = {"user": user_id, "channels": list(channels)}
    if user_id and (name := display_name(user)):
        ticket["name"] = name
    value = json.dumps(ticket, separators=(",", ":"))
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


def revoke_on_logout(sender: object, request: object, user: Any, **kwargs: object) -> None:
    """`user_logged_out` receiver. Logging out must not fail with Redis, so a failure is only logged."""
    if user is None or not user.is_authenticated:
        return
    try:
        revoke_user_tickets(user)
    except TicketBackendError:
        logger.exception("tickets of user %s not revoked at logout; they expire on their own", user.pk)
