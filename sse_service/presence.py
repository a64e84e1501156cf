"""Listener counts per channel, written to Redis so Django can sum them over every process.

Each process keeps, per channel it serves, a count key that expires after three intervals unless
refreshed, and adds its name to the channel's presence set. A process that crashes stops refreshing
and its count disappears with the TTL, so there are no ghosts. No clocks are compared: Redis expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from .hub import Hub
from .protocol import RedisNames
from .redis_clients import REDIS_ERRORS, CommandClient

logger = logging.getLogger(__name__)


async def report_presence(hub: Hub, client: CommandClient, names: RedisNames, interval: float) -> None:
    process = f"{socket.gethostname()}-{os.getpid()}"
    ttl = max(1, round(3 * interval))
    reported: set[str] = set()
    while True:
        counts = hub.listener_counts()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for channel, count in counts.items():
                    pipe.set(names.presence_count_key(channel, process), count, ex=ttl)
                    pipe.sadd(names.presence_key(channel), process)
                    pipe.expire(names.presence_key(channel), ttl)
                for channel in reported - counts.keys():
                    pipe.delete(names.presence_count_key(channel, process))
                    pipe.srem(names.presence_key(channel), process)
                await pipe.execute()
            reported = set(counts)
        except REDIS_ERRORS as exc:
            logger.debug("presence not written: %s", exc)
        await asyncio.sleep(interval)
