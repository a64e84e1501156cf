"""Listener counts per channel, and who listens where the policy lists members, written to Redis so
Django can sum them over every process.

Each process keeps, per channel it serves, a count key that expires after three intervals unless
refreshed, and adds its name to the channel's presence set. On a channel whose policy says
`"presence": "who"` it also writes its members, `{"<user pk>": "<display name>"}` as one JSON
string (replaced whole, so a reader never sees half of it), under the same TTL. Members come from
the stream's ticket (user pk and the name Django's hook gave); anonymous listeners are counted,
never listed. A process that crashes stops refreshing and its keys disappear with the TTL
(3 x SSE_PRESENCE_SECONDS, 15 s by default), so there are no ghosts past that. No clocks are
compared: Redis expires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections import Counter
from collections.abc import Iterable

from .arrivals import announce
from .hub import Hub
from .policies import PolicyTable, Presence
from .protocol import RedisNames
from .redis_clients import REDIS_ERRORS, CommandClient

logger = logging.getLogger(__name__)


class Roster:
    """Who listens on this process, per channel whose policy lists members: user pk to display name,
    with how many of that user's streams are open on the channel."""

    def __init__(self, policies: PolicyTable) -> None:
        self.policies = policies
        self._streams: dict[str, Counter[tuple[str, str]]] = {}

    def add(self, channels: Iterable[str], user: str, name: str) -> None:
        if not user:
            return  # anonymous: counted by the hub, never listed
        for channel in channels:
            if self.policies.for_channel(channel).names_listeners:
                self._streams.setdefault(channel, Counter())[(user, name)] += 1

    def remove(self, channels: Iterable[str], user: str, name: str) -> None:
        for channel in channels:
            streams = self._streams.get(channel)
            if streams is None or (user, name) not in streams:
                continue
            streams[(user, name)] -= 1
            if streams[(user, name)] <= 0:
                del streams[(user, name)]
            if not streams:
                del self._streams[channel]

    def members(self, channel: str) -> dict[str, str]:
        return {user: name for user, name in self._streams.get(channel, ())}


async def report_presence(
    hub: Hub, roster: Roster, client: CommandClient, names: RedisNames, interval: float
) -> None:
    """Every `interval`: counts, members and joins/leaves (arrivals.py) of the channels served here."""
    policies = roster.policies
    process = f"{socket.gethostname()}-{os.getpid()}"
    ttl = max(1, round(3 * interval))
    reported: set[str] = set()
    listed: set[str] = set()
    while True:
        counts = hub.listener_counts()
        members = {
            channel: m
            for channel in counts
            if policies.for_channel(channel).presence is Presence.WHO and (m := roster.members(channel))
        }
        try:
            async with client.pipeline(transaction=False) as pipe:
                for channel, count in counts.items():
                    pipe.set(names.presence_count_key(channel, process), count, ex=ttl)
                    pipe.sadd(names.presence_key(channel), process)
                    pipe.expire(names.presence_key(channel), ttl)
                for channel, who in members.items():
                    text = json.dumps(who, sort_keys=True, separators=(",", ":"))
                    pipe.set(names.presence_members_key(channel, process), text, ex=ttl)
                for channel in listed - members.keys():
                    pipe.delete(names.presence_members_key(channel, process))
                for channel in reported - counts.keys():
                    pipe.delete(names.presence_count_key(channel, process))
                    pipe.srem(names.presence_key(channel), process)
                await pipe.execute()
            reported, listed = set(counts), set(members)
            for channel in counts:
                policy = policies.for_channel(channel)
                if policy.join_leave:
                    await announce(client, names, channel, policy, roster.members(channel), ttl)
        except REDIS_ERRORS as exc:
            logger.debug("presence not written: %s", exc)
        await asyncio.sleep(interval)
