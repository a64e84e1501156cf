"""Publishes through the project's own atomic publish step (the Lua script the Django site ships)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import redis

LUA = Path(__file__).resolve().parents[2] / "django_site" / "live" / "lua" / "publish.lua"


def publish(
    client: redis.Redis,
    channel: str,
    data: str,
    event: str = "",
    prefix: str = "sse",
    maxlen: int = 1000,
) -> str:
    """`data` is the JSON text; returns the id Redis assigned."""
    script = client.register_script(LUA.read_text())
    keys = [f"{prefix}:{{{channel}}}:events", f"{prefix}:last-id", f"{prefix}:{{{channel}}}:trimmed"]
    result = script(keys=keys, args=[f"{prefix}:{{{channel}}}", event, data, maxlen])
    return result.decode() if isinstance(result, bytes) else str(result)


class ContinuousPublisher(threading.Thread):
    """Publishes `count` events round-robin over `channels` at about `rate` a second, in a thread.

    It keeps trying while Redis is unreachable, so an outage delays events but loses none;
    `published[channel]` holds the ids Redis assigned, in order.
    """

    def __init__(self, port: int, channels: list[str], count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.channels = channels
        self.count = count
        self.rate = rate
        self.published: dict[str, list[str]] = {channel: [] for channel in channels}

    @property
    def total(self) -> int:
        return sum(map(len, self.published.values()))

    def run(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)
        started = time.monotonic()
        for n in range(self.count):
            channel = self.channels[n % len(self.channels)]
            while True:
                try:
                    self.published[channel].append(publish(client, channel, json.dumps({"n": n})))
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    time.sleep(0.05)
            time.sleep(max(0.0, started + (n + 1) / self.rate - time.monotonic()))
        client.close()
