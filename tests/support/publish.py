"""Publishing in tests: one event, or a steady flow that rides out Redis outages (`devstack.publishing`
is the Lua step itself)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import redis

from devstack.publishing import STREAM_MAXLEN, LuaPublisher, events_key
from devstack.services import KEY_PREFIX


def publish(
    client: redis.Redis | redis.RedisCluster,
    channel: str,
    data: str,
    event: str = "",
    prefix: str = KEY_PREFIX,
    maxlen: int = STREAM_MAXLEN,
) -> str:
    """One event, as a test publishes it; returns the id Redis assigned."""
    return LuaPublisher(client, prefix, maxlen).publish(channel, data, event)


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
                channel: [entry_id.decode() for entry_id, _ in client.xrange(events_key(channel))]
                for channel in self.channels
            }

    def run(self) -> None:
        client = self.connect()
        publisher = LuaPublisher(client)
        started = time.monotonic()
        for n in range(self.count):
            channel = self.channels[n % len(self.channels)]
            while True:
                try:
                    self.published[channel].append(publisher.publish(channel, json.dumps({"n": n})))
                    break
                except _UNAVAILABLE:
                    time.sleep(0.05)
            time.sleep(max(0.0, started + (n + 1) / self.rate - time.monotonic()))
        client.close()
