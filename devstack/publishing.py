"""Publishing as the Django site does, through its own Lua step (`django_sse_push/lua/publish.lua`):
for the tests and the bench, which drive the SSE service without Django.

Keys are spelled as `django_sse_push/keys.py` spells them: `P:{channel}` is the pub/sub channel,
`P:{channel}:events` the stream a resuming client reads, `P:{channel}:trimmed` where trimmed history begins.
"""

from __future__ import annotations

import redis

from .services import KEY_PREFIX, REPO

PUBLISH_LUA = REPO / "django_site" / "django_sse_push" / "lua" / "publish.lua"
# Django's SSE_STREAM_MAXLEN default: how much history a resuming client can get back.
STREAM_MAXLEN = 1000


def events_key(channel: str, prefix: str = KEY_PREFIX) -> str:
    """The stream that holds `channel`'s history."""
    return f"{prefix}:{{{channel}}}:events"


class LuaPublisher:
    """Publishes with one client, its script registered once; on a cluster client with SPUBLISH."""

    def __init__(
        self, client: redis.Redis | redis.RedisCluster, prefix: str = KEY_PREFIX, maxlen: int = STREAM_MAXLEN
    ) -> None:
        self._script = client.register_script(PUBLISH_LUA.read_text())
        self._prefix = prefix
        self._maxlen = maxlen
        self._command = "SPUBLISH" if isinstance(client, redis.RedisCluster) else "PUBLISH"

    def publish(self, channel: str, data: str, event: str = "") -> str:
        """`data` is the JSON text; returns the id Redis assigned."""
        pubsub = f"{self._prefix}:{{{channel}}}"
        keys = [events_key(channel, self._prefix), f"{pubsub}:trimmed"]
        result = self._script(keys=keys, args=[pubsub, event, data, self._maxlen, self._command])
        return result.decode() if isinstance(result, bytes) else str(result)
