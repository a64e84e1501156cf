"""`presence.join` and `presence.leave` events, on channels whose policy turns them on.

Each process, at each presence report, hands Redis the members it has on such a channel; one Lua
step (`lua/arrivals.lua`) keeps the channel's roster across every process: a user not on it is a
join, a user nobody has refreshed for the grace period (3 x SSE_PRESENCE_SECONDS, the presence
TTL) is a leave. So a reconnect within the grace, to any replica, is neither, and a killed replica's
users leave once the grace has passed. Redis's clock decides, never a process's. The events are
published as the site publishes any event (stream, retention, pub/sub), so they reach listeners,
resumes and rewinds alike, with data `{"user": "<pk>", "name": "<display name>"}`. Past the
policy's `join_leave_max_members` the roster is kept but no events are published: on a mass
reconnect, join/leave traffic grows with the square of the members.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from .policies import Policy
from .protocol import RedisNames
from .redis_clients import CommandClient, is_cluster


@cache
def _source() -> str:
    return files(__package__).joinpath("lua/arrivals.lua").read_text(encoding="utf-8")


async def announce(
    client: CommandClient,
    names: RedisNames,
    channel: str,
    policy: Policy,
    members: dict[str, str],
    grace_seconds: float,
) -> int:
    """Publishes the channel's joins and leaves since the last report; returns how many."""
    keys = [
        names.roster_key(channel),
        names.roster_names_key(channel),
        names.stream_key(channel),
        names.trimmed_key(channel),
    ]
    command = "SPUBLISH" if is_cluster(client) else "PUBLISH"
    args: list[str | int] = [
        names.pubsub_channel(channel).decode(),
        command,
        round(grace_seconds * 1000),
        policy.history,
        policy.join_leave_max_members,
    ]
    for user, name in sorted(members.items()):
        args += [user, name]
    published = await client.eval(_source(), len(keys), *keys, *args)
    return int(published)
