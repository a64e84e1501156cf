"""Missed events, read back from the per-channel streams: for resuming clients and after Redis outages.

Channels are read in MULTI/EXEC (each one's trimmed marker and its entries after a position), so what
comes back for a channel is a snapshot of it at one instant: everything published on it up to then
is in it (or was trimmed, which a `reset` frame reports), and what comes after reaches the reader
live. Ids are ordered per channel, so per-channel positions stitch history
and live together without a gap or a duplicate. On one Redis all channels share one transaction; on
a Redis Cluster, where a channel's keys share a slot but channels do not, each has its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .protocol import (
    Envelope,
    Positions,
    RedisNames,
    StreamId,
    encode_frame,
    encode_reset,
    format_stream_id,
    parse_stream_id,
)
from .redis_clients import CommandClient, is_cluster


@dataclass(frozen=True, slots=True)
class History:
    # (channel, id, frame) in id order, resets included.
    frames: list[tuple[str, StreamId, bytes]]

    @property
    def resets(self) -> list[str]:
        return [channel for channel, _, frame in self.frames if b"\nevent: reset\n" in frame]


async def read_history(client: CommandClient, names: RedisNames, positions: Positions) -> History:
    """Everything after `positions[channel]` on each channel."""
    groups = [[c] for c in positions] if is_cluster(client) else [list(positions)]
    reads = await asyncio.gather(*(_read_channels(client, names, group, positions) for group in groups))
    frames = [frame for read in reads for frame in read]
    frames.sort(key=lambda item: item[1])
    return History(frames)


async def newest_positions(client: CommandClient, names: RedisNames, channels: list[str]) -> Positions:
    """Each channel's newest id ((0, 0) for none yet): where a reader that wants only what follows starts."""
    async with client.pipeline(transaction=False) as pipe:
        for channel in channels:
            pipe.xrevrange(names.stream_key(channel), count=1)
        replies = await pipe.execute()
    return {
        c: parse_stream_id(top[0][0]) if top else (0, 0) for c, top in zip(channels, replies, strict=True)
    }


async def _read_channels(
    client: CommandClient, names: RedisNames, channels: list[str], positions: Positions
) -> list[tuple[str, StreamId, bytes]]:
    async with client.pipeline(transaction=True) as pipe:
        for channel in channels:
            pipe.get(names.trimmed_key(channel))
            pipe.xrange(names.stream_key(channel), min="(" + format_stream_id(positions[channel]), max="+")
        replies = await pipe.execute()
    frames = []
    for index, channel in enumerate(channels):
        trimmed, entries = replies[2 * index], replies[2 * index + 1]
        frames += _channel_frames(channel, trimmed, entries, positions[channel])
    return frames


def _channel_frames(
    channel: str, trimmed: bytes | None, entries: list[tuple[bytes, dict[bytes, bytes]]], after: StreamId
) -> list[tuple[str, StreamId, bytes]]:
    if trimmed is not None and parse_stream_id(trimmed) > after:
        # Retention dropped events this reader never saw; it must reload, not replay a partial past.
        # The reset stands where the channel is now, so the reader's position moves past it.
        top = parse_stream_id(entries[-1][0]) if entries else parse_stream_id(trimmed)
        return [(channel, top, encode_reset(channel, top))]
    return [
        (
            channel,
            parse_stream_id(entry_id),
            encode_frame(channel, Envelope(entry_id, fields.get(b"event", b""), fields.get(b"data", b""))),
        )
        for entry_id, fields in entries
    ]
