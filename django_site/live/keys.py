"""Redis names for a channel, as the README's wire contract defines them. The only place that spells them."""

from __future__ import annotations


def pubsub_channel(prefix: str, channel: str) -> str:
    # The braces are a Redis Cluster hash tag: a channel's keys share a slot.
    return f"{prefix}:{{{channel}}}"


def stream_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:events"


def trimmed_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:trimmed"


def presence_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:presence"


def presence_count_key(prefix: str, channel: str, process: str) -> str:
    return f"{prefix}:{{{channel}}}:presence:{process}"


def last_id_key(prefix: str) -> str:
    return f"{prefix}:last-id"
