"""Publishing as the Django site does, through its own Lua step (`django_sse_push/lua/publish.lua`):
for the tests and the bench, which drive the SSE service without Django.

Keys are the service's `RedisNames`, which `django_sse_push/keys.py` spells the same way on Django's
side: the pub/sub channel, the stream a resuming client reads, and where trimmed history begins.
"""

from __future__ import annotations

import redis

from sse_service.protocol import RedisNames

from .services import KEY_PREFIX, REPO

PUBLISH_LUA = REPO / "django_site" / "django_sse_push" / "lua" / "publish.lua"
# Django's SSE_STREAM_MAXLEN default: how much history a resuming client can get back.
STREAM_MAXLEN = 1000
# Django's SSE_IDEMPOTENCY_SECONDS default, and how many keys a channel keeps by default (as many as
# its stream keeps events, at least ten relay batches: django_sse_push/_sending.py).
IDEMPOTENCY_SECONDS = 3600
REMEMBERED_KEYS = 1000


def events_key(channel: str, prefix: str = KEY_PREFIX) -> str:
    """The stream that holds `channel`'s history."""
    return RedisNames(prefix).stream_key(channel)


class LuaPublisher:
    """Publishes with one client, its script registered once; on a cluster client with SPUBLISH."""

    def __init__(
        self, client: redis.Redis | redis.RedisCluster, prefix: str = KEY_PREFIX, maxlen: int = STREAM_MAXLEN
    ) -> None:
        self._script = client.register_script(PUBLISH_LUA.read_text())
        self._names = RedisNames(prefix)
        self._maxlen = maxlen
        self._command = "SPUBLISH" if isinstance(client, redis.RedisCluster) else "PUBLISH"

    def publish(self, channel: str, data: str, event: str = "", idempotency_key: str | None = None) -> str:
        """`data` is the JSON text; returns the id Redis assigned (with `idempotency_key`, the first
        publish's id for a repeat, as the outbox sends)."""
        names = self._names
        keys = [names.stream_key(channel), names.trimmed_key(channel)]
        args: list[str | bytes | int] = [
            names.pubsub_channel(channel),
            event,
            data,
            self._maxlen,
            self._command,
        ]
        if idempotency_key is not None:
            keys += [names.idempotency_key(channel), names.idempotency_times_key(channel)]
            args += [idempotency_key, IDEMPOTENCY_SECONDS * 1000, REMEMBERED_KEYS]
        result = self._script(keys=keys, args=args)
        if idempotency_key is not None:
            result = result[0]
        return result.decode() if isinstance(result, bytes) else str(result)
