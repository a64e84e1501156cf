"""Tickets written and revoked as the Django site does (django_sse_push/tickets.py), to test the
SSE service alone."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence

import redis


def issue(
    client: redis.Redis, channels: Sequence[str], user: str = "", ttl: int = 300, prefix: str = "sse"
) -> str:
    """Stores a ticket for `channels` and returns its token."""
    token = secrets.token_urlsafe(32)
    key = f"{prefix}:ticket:{hashlib.sha256(token.encode()).hexdigest()}"
    client.set(key, json.dumps({"user": user, "channels": list(channels)}), ex=ttl)
    return token


def key(token: str, prefix: str = "sse") -> str:
    return f"{prefix}:ticket:{hashlib.sha256(token.encode()).hexdigest()}"


def revoke_user(client: redis.Redis, user: str, prefix: str = "sse") -> None:
    """Publishes the control message only; deleting the user's tickets is the caller's business."""
    client.publish(f"{prefix}:control", f"revoke-user {user}")
