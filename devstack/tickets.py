"""Tickets written and revoked as the Django site does (`django_sse_push/tickets.py`), for what drives the SSE
service without Django: tests of private channels, and anything that needs a stream on one.

`P:ticket:<sha256 hex of the token>` holds `{"user": ..., "channels": [...]}` with a TTL; the service
reads it by hashing the token it is given, so the token itself is never stored.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

import redis

from sse_service import auth
from sse_service.protocol import RedisNames

from .services import KEY_PREFIX


def ticket_key(token: str, prefix: str = KEY_PREFIX) -> str:
    """The Redis key of the ticket `token` stands for, as the service looks it up."""
    return auth.ticket_key(prefix, token)


def issue(
    client: redis.Redis,
    channels: Sequence[str],
    user: str = "",
    ttl: int = 300,
    prefix: str = KEY_PREFIX,
    name: str = "",
) -> str:
    """Stores a ticket for `channels` (held by `user`, listed by presence as `name`); returns its token."""
    token = secrets.token_urlsafe(32)
    ticket: dict[str, object] = {"user": user, "channels": list(channels)}
    if name:
        ticket["name"] = name
    client.set(ticket_key(token, prefix), json.dumps(ticket), ex=ttl)
    return token


def revoke_user(client: redis.Redis, user: str, prefix: str = KEY_PREFIX) -> None:
    """Publishes the control message only; deleting the user's tickets is the caller's business."""
    client.publish(RedisNames(prefix).control_channel(), f"revoke-user {user}")
