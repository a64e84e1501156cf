"""Missed events, read back from the per-channel streams: for resuming clients and after Redis outages.

All the channels are read in one MULTI/EXEC, so the result is a snapshot of one instant: everything
published up to `History.newest` is in it (or was trimmed, which `reset` frames report), and everything
after reaches the reader live. Because ids are ordered across channels, that one position is enough
to stitch history and live together without a gap or a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as redis

from .protocol import (
    Envelope,
    RedisNames,
    StreamId,
    encode_frame,
    encode_reset,
    format_stream_id,
    parse_stream_id,
)


@dataclass(frozen=True, slots=True)
class History:
    # (channel, id, frame) in id order, resets included.
    frames: list[tuple[str, StreamId, bytes]]
    newest: StreamId

    @property
    def resets(self) -> list[str]:
        return [channel for channel, _, frame in self.frames if b"\nevent: reset\n" in frame]


async def read_history(
    client: redis.Redis, names: RedisNames, channels: Iterable[str], after: StreamId
) -> History:
    channels = list(channels)
    async with client.pipeline(transaction=True) as pipe:
        for channel in channels:
            pipe.get(names.trimmed_key(channel))
            pipe.xrange(names.stream_key(channel), min="(" + format_stream_id(after), max="+")
        replies = await pipe.execute()
    frames: list[tuple[str, StreamId, bytes]] = []
    for index, channel in enumerate(channels):
        trimmed, entries = replies[2 * index], replies[2 * index + 1]
        frames += _channel_frames(channel, trimmed and parse_stream_id(trimmed), entries, after)
    frames.sort(key=lambda item: item[1])
    newest = max([after, *(stream_id for _, stream_id, _ in frames)])
    return History(frames, newest)


def _channel_frames(
    channel: str,
    trimmed: StreamId | None,
    entries: list[tuple[bytes, dict[bytes, bytes]]],
    after: StreamId,
) -> list[tuple[str, StreamId, bytes]]:
    if trimmed is not None and trimmed > after:
        # Retention dropped events this reader never saw; it must reload, not replay a partial past.
        # The reset stands where the channel is now, so the reader's position moves past it.
        top = parse_stream_id(entries[-1][0]) if entries else trimmed
        return [(channel, top, encode_reset(channel, top))]
    return [
        (
            channel,
            parse_stream_id(entry_id),
            encode_frame(channel, Envelope(entry_id, fields.get(b"event", b""), fields.get(b"data", b""))),
        )
        for entry_id, fields in entries
    ]
