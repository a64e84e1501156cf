"""The app's settings: every name starts with `SSE_`, each has a default, read on each use.

Read on each use rather than once at import, so `override_settings` in a project's tests and
`settings.X = ...` in pytest-django work as they do for Django's own settings. `manage.py check`
validates them (checks.py) before the first request; the names the SSE service also reads
(`SSE_KEY_PREFIX`, `SSE_MAX_PAYLOAD_BYTES`, `SSE_PUBLIC_PREFIXES`, and where Redis is) are the wire
contract and must equal the service's environment variables of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings

PREFIX = "SSE_"


@dataclass(frozen=True)
class PushSettings:
    # Where Redis is: a URL, or a Redis Cluster's start-up nodes (host:port), which win when given.
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_CLUSTER_NODES: tuple[str, ...] = ()
    # The wire contract, shared with the SSE service.
    KEY_PREFIX: str = "sse"
    MAX_PAYLOAD_BYTES: int = 65536
    PUBLIC_PREFIXES: tuple[str, ...] = ("public.",)
    # Django's side only.
    STREAM_MAXLEN: int = 1000
    TICKET_TTL_SECONDS: int = 300
    CHANNEL_PERMISSION: str = "django_sse_push.permissions.default_can_read_channel"
    # Where pages open their streams: nginx's `location /sse/` on this origin, or the service on
    # another origin in development (`http://127.0.0.1:8001/sse/`, with its SSE_CORS_ORIGINS).
    STREAM_URL: str = "/sse/"
    # How long Redis remembers an idempotency key (the outbox's, or one given to publish()): a repeat
    # within this time publishes nothing. Longer than a relay may stay down after sending a batch.
    IDEMPOTENCY_SECONDS: int = 3600
    # The outbox relay: at most this many events per pass, and how often it looks when idle.
    OUTBOX_BATCH_SIZE: int = 100
    OUTBOX_POLL_SECONDS: float = 1.0


def setting_name(field: str) -> str:
    """The Django setting behind a field, as users write it: `SSE_KEY_PREFIX`."""
    return PREFIX + field


def push_settings() -> PushSettings:
    """The current values, defaults filled in; lists become tuples."""
    values: dict[str, Any] = {}
    for field in fields(PushSettings):
        name = setting_name(field.name)
        if hasattr(settings, name):
            value = getattr(settings, name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return PushSettings(**values)
