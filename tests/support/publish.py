"""Publishes through the project's own atomic publish step (the Lua script the Django site ships)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

LUA = Path(__file__).resolve().parents[2] / "django_site" / "django_sse_push" / "lua" / "publish.lua"


def publish(
    client: redis.Redis | redis.RedisCluster,
    channel: str,
    data: str,
    event: str = "",
    prefix: str = "sse",
    maxlen: int = 1000,
) -> str:
    """`data` is the JSON text; returns the id Redis assigned."""
    script = client.register_script(LUA.read_text())
    keys = [f"{prefix}:{{{channel}}}:events", f"{prefix}:{{{channel}}}:trimmed"]
    command = "SPUBLISH" if isinstance(client, redis.RedisCluster) else "PUBLISH"
    result = script(keys=keys, args=[f"{prefix}:{{{channel}}}", event, data, maxlen, command])
    return result.decode() if isinstance(result, bytes) else str(result)


Client = redis.Redis | redis.RedisCluster

# What a restarting Redis, or a cluster failing over, answers for a while.
_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.exceptions.ClusterError,
    redis.exceptions.RedisClusterException,
)


def redis_at(port: int) -> Callable[[], Client]:
    """Connects a publisher to one Redis, with short timeouts so it notices an outage quickly."""
    return lambda: redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=1)


class ContinuousPublisher(threading.Thread):
    """Publishes `count` events round-robin over `channels` at about `rate` a second, in a thread.

    It keeps trying while Redis is unreachable, so an outage delays events but loses none;
    `published[channel]` holds the ids Redis assigned, in order.
    """

    def __init__(self, connect: Callable[[], Client], channels: list[str], count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.connect = connect
        self.channels = channels
        self.count = count
        self.rate = rate
        self.published: dict[str, list[str]] = {channel: [] for channel in channels}

    @property
    def total(self) -> int:
        return sum(map(len, self.published.values()))

    def stream_ids(self) -> dict[str, list[str]]:
        """What Redis holds: the truth, as a publish that failed on a dying node may still have run."""
        with self.connect() as client:
            return {
                channel: [entry_id.decode() for entry_id, _ in client.xrange(f"sse:{{{channel}}}:events")]
                for channel in self.channels
            }

    def run(self) -> None:
        client = self.connect()
        started = time.monotonic()
        for n in range(self.count):
            channel = self.channels[n % len(self.channels)]
            while True:
                try:
                    self.published[channel].append(publish(client, channel, json.dumps({"n": n})))
                    break
                except _UNAVAILABLE:
                    time.sleep(0.05)
            time.sleep(max(0.0, started + (n + 1) / self.rate - time.monotonic()))
        client.close()
