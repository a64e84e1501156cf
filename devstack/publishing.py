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

    def publish(self, channel: str, data: str, event: str = "") -> str:
        """`data` is the JSON text; returns the id Redis assigned."""
        names = self._names
        keys = [names.stream_key(channel), names.trimmed_key(channel)]
        pubsub = names.pubsub_channel(channel)
        result = self._script(keys=keys, args=[pubsub, event, data, self._maxlen, self._command])
        return result.decode() if isinstance(result, bytes) else str(result)
