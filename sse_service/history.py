"""Missed events, read back from the per-channel streams: for resuming clients and after Redis outages.

History is read in pages (`XRANGE ... COUNT`) sized so one page holds about `budget` bytes: what a
connection may have waiting anyway (`SSE_SEND_BUFFER_BYTES`). The reader writes a page before it
asks for the next, so a stream with megabytes of history never holds more than a page of it, and a
reset that replaces a trimmed past is read without the past.

Each page reads, per channel and in one MULTI/EXEC, its trimmed marker, its newest id and its next
entries, so what comes back for a channel is a snapshot at one instant: everything published on it
up to then is in it, in a later page, or was trimmed (a `reset` frame reports that and stands at the
channel's newest id, so the reader's position moves past it). Ids are ordered per channel, so
per-channel positions stitch history and live together without a gap or a duplicate. On one Redis
all channels share one transaction; on a Redis Cluster, where a channel's keys share a slot but
channels do not, each has its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .protocol import (
    Envelope,
    Frame,
    Positions,
    RedisNames,
    event_frame,
    format_stream_id,
    parse_stream_id,
    reset_frame,
)
from .redis_clients import CommandClient, is_cluster

# At most this many entries per channel per page, however small they are.
MAX_PAGE = 1000


async def read_pages(
    client: CommandClient, names: RedisNames, positions: Positions, budget: int, largest: int
) -> AsyncIterator[list[Frame]]:
    """Everything after `positions[channel]` on each channel, in pages of about `budget` bytes.

    `largest` is the most an entry may weigh: the first page is sized on it, later ones on what
    entries weighed so far. A page's frames are in id order; a channel ends with its newest entry or a reset.
    """
    after = dict(positions)
    count = _clamp(budget // max(largest, 1))
    while after:
        per_channel = _clamp(count // len(after))
        frames, finished = await _read_page(client, names, after, per_channel)
        for frame in frames:
            after[frame.channel] = frame.id
        for channel in finished:
            del after[channel]
        if frames:
            yield frames
            weight = sum(len(frame.wire) for frame in frames)
            count = _clamp(budget * len(frames) // max(weight, 1))


async def newest_positions(client: CommandClient, names: RedisNames, channels: list[str]) -> Positions:
    """Each channel's newest id ((0, 0) for none yet): where a reader that wants only what follows starts."""
    async with client.pipeline(transaction=False) as pipe:
        for channel in channels:
            pipe.xrevrange(names.stream_key(channel), count=1)
        replies = await pipe.execute()
    return {
        c: parse_stream_id(top[0][0]) if top else (0, 0) for c, top in zip(channels, replies, strict=True)
    }


async def rewind_positions(client: CommandClient, names: RedisNames, counts: dict[str, int]) -> Positions:
    """Per channel, the position just before its last `counts[channel]` events: resuming from there
    replays those events, then whatever follows, as any resume does.

    Where a channel holds fewer, it starts at its trimmed marker (or its beginning), so a rewind
    over a short history never reads as a position older than retention (no `reset`).
    """
    channels = list(counts)
    async with client.pipeline(transaction=False) as pipe:
        for channel in channels:
            pipe.xrevrange(names.stream_key(channel), count=counts[channel] + 1)
            pipe.get(names.trimmed_key(channel))
        replies = await pipe.execute()
    positions: Positions = {}
    for index, channel in enumerate(channels):
        entries, trimmed = replies[2 * index : 2 * index + 2]
        floor = parse_stream_id(trimmed) if trimmed is not None else (0, 0)
        if len(entries) > counts[channel]:
            floor = max(floor, parse_stream_id(entries[-1][0]))
        positions[channel] = floor
    return positions


def _clamp(count: int) -> int:
    return max(1, min(MAX_PAGE, count))


async def _read_page(
    client: CommandClient, names: RedisNames, after: Positions, count: int
) -> tuple[list[Frame], list[str]]:
    """The next `count` entries of each channel, and the channels that have no more."""
    groups = [[c] for c in after] if is_cluster(client) else [list(after)]
    reads = await asyncio.gather(*(_read_group(client, names, group, after, count) for group in groups))
    frames = [frame for group_frames, _ in reads for frame in group_frames]
    frames.sort(key=lambda frame: frame.id)
    return frames, [channel for _, finished in reads for channel in finished]


async def _read_group(
    client: CommandClient, names: RedisNames, channels: list[str], after: Positions, count: int
) -> tuple[list[Frame], list[str]]:
    async with client.pipeline(transaction=True) as pipe:
        for channel in channels:
            key = names.stream_key(channel)
            pipe.get(names.trimmed_key(channel))
            pipe.xrevrange(key, count=1)
            pipe.xrange(key, min="(" + format_stream_id(after[channel]), max="+", count=count)
        replies = await pipe.execute()
    frames: list[Frame] = []
    finished = []
    for index, channel in enumerate(channels):
        trimmed, newest, entries = replies[3 * index : 3 * index + 3]
        channel_frames, done = _channel_page(channel, trimmed, newest, entries, after[channel], count)
        frames += channel_frames
        if done:
            finished.append(channel)
    return frames, finished


def _channel_page(
    channel: str,
    trimmed: bytes | None,
    newest: list[tuple[bytes, Any]],
    entries: list[tuple[bytes, dict[bytes, bytes]]],
    after: tuple[int, int],
    count: int,
) -> tuple[list[Frame], bool]:
    if trimmed is not None and parse_stream_id(trimmed) > after:
        # Retention dropped events this reader never saw; it must reload, not replay a partial past.
        top = max(parse_stream_id(trimmed), parse_stream_id(newest[0][0]) if newest else (0, 0))
        return [reset_frame(channel, top)], True
    frames = [
        event_frame(
            channel,
            parse_stream_id(entry_id),
            Envelope(entry_id, fields.get(b"event", b""), fields.get(b"data", b"")),
        )
        for entry_id, fields in entries
    ]
    return frames, len(entries) < count
