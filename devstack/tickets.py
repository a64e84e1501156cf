"""Tickets written and revoked as the Django site does (`django_sse_push/tickets.py`), for what drives the SSE
service without Django: tests of private channels, and anything that needs a stream on one.

`P:ticket:<sha256 hex of the token>` holds `{"user": ..., "channels": [...]}` with a TTL; the service
reads it by hashing the token it is given, so the token itself is never stored.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence

import redis

from .services import KEY_PREFIX


def ticket_key(token: str, prefix: str = KEY_PREFIX) -> str:
    """The Redis key of the ticket `token` stands for."""
    return f"{prefix}:ticket:{hashlib.sha256(token.encode()).hexdigest()}"


def issue(
    client: redis.Redis, channels: Sequence[str], user: str = "", ttl: int = 300, prefix: str = KEY_PREFIX
) -> str:
    """Stores a ticket for `channels` and returns its token."""
    token = secrets.token_urlsafe(32)
    client.set(ticket_key(token, prefix), json.dumps({"user": user, "channels": list(channels)}), ex=ttl)
    return token


def revoke_user(client: redis.Redis, user: str, prefix: str = KEY_PREFIX) -> None:
    """Publishes the control message only; deleting the user's tickets is the caller's business."""
    client.publish(f"{prefix}:control", f"revoke-user {user}")
