"""The wire contract in code: channel names, Redis names, the pub/sub envelope and the SSE frame.

Everything here mirrors docs/wire-contract.md, which is the only thing this service
shares with the Django site. Change both together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CHANNEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
ENVELOPE_VERSION = b"v1"
# The type of the block that opens every stream (`encode_opening`): the service's own, as is `reset`.
OPENING_EVENT = b"sse.start"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class EnvelopeError(ValueError):
    """A pub/sub message does not follow the envelope format."""


def is_valid_channel(name: str) -> bool:
    return CHANNEL_PATTERN.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class RedisNames:
    """Redis channel and key names under the configured prefix.

    The channel name sits in braces (a Redis Cluster hash tag) so its stream and its pub/sub channel
    always land on the same node.
    """

    prefix: str

    def pubsub_channel(self, channel: str) -> bytes:
        return f"{self.prefix}:{{{channel}}}".encode()

    def stream_key(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:events"

    def trimmed_key(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:trimmed"

    def idempotency_key(self, channel: str) -> str:
        """Hash: the idempotency keys of the channel's newest publishes, each to its id (publish.lua)."""
        return f"{self.prefix}:{{{channel}}}:idempotency"

    def idempotency_times_key(self, channel: str) -> str:
        """Sorted set: the same keys scored by publication time (ms), to forget the oldest."""
        return f"{self.prefix}:{{{channel}}}:idempotency:times"

    def presence_key(self, channel: str) -> str:
        """A set of the processes reporting listeners on `channel`."""
        return f"{self.prefix}:{{{channel}}}:presence"

    def presence_count_key(self, channel: str, process: str) -> str:
        """How many listeners `process` has on `channel`; expires unless refreshed."""
        return f"{self.prefix}:{{{channel}}}:presence:{process}"

    def policies_key(self) -> str:
        """The policy table the service runs with, canonical JSON (policies.py), for Django to compare."""
        return f"{self.prefix}:policies"

    def presence_members_key(self, channel: str, process: str) -> str:
        """Who listens through `process` on `channel`, JSON `{"<user pk>": "<name>"}`; expires unless
        refreshed."""
        return f"{self.prefix}:{{{channel}}}:members:{process}"

    def roster_key(self, channel: str) -> str:
        """Sorted set: the users present on `channel` across processes, scored by when they lapse."""
        return f"{self.prefix}:{{{channel}}}:roster"

    def roster_names_key(self, channel: str) -> str:
        """Hash: those users' display names, for their `presence.leave` events."""
        return f"{self.prefix}:{{{channel}}}:roster:names"

    def control_channel(self) -> bytes:
        """Where Django announces revocations (revocation.py)."""
        return f"{self.prefix}:control".encode()

    def ticket_key(self, digest: str) -> str:
        """A ticket, under the sha256 hex digest of its token (auth.py)."""
        return f"{self.prefix}:ticket:{digest}"

    def ended_session_key(self, digest: str) -> str:
        """Set when the Django session with this sha256 hex digest logged out; a ticket naming it is
        refused (auth.py)."""
        return f"{self.prefix}:ended-session:{digest}"


@dataclass(frozen=True, slots=True)
class Envelope:
    id: bytes
    event: bytes
    data: bytes


def parse_envelope(raw: bytes) -> Envelope:
    """Split `v1\\n<id>\\n<event>\\n<data>`; the data is everything after the third line break."""
    parts = raw.split(b"\n", 3)
    if len(parts) != 4 or parts[0] != ENVELOPE_VERSION:
        raise EnvelopeError(f"not a {ENVELOPE_VERSION.decode()} envelope: {raw[:40]!r}")
    _, event_id, event, data = parts
    if not event_id or b"\r" in event_id or b"\r" in event:
        raise EnvelopeError(f"malformed id or event line: {raw[:80]!r}")
    return Envelope(event_id, event, data)


def encode_frame(channel: str, envelope: Envelope) -> bytes:
    """The SSE frame for one event; built once per message and shared by every listener."""
    lines = [b"id: ", channel.encode(), b"/", envelope.id, b"\n"]
    if envelope.event:
        lines += [b"event: ", envelope.event, b"\n"]
    data = envelope.data
    if b"\n" in data or b"\r" in data:
        for line in _LINE_BREAK.split(data):
            lines += [b"data: ", line, b"\n"]
    else:
        lines += [b"data: ", data, b"\n"]
    lines.append(b"\n")
    return b"".join(lines)


StreamId = tuple[int, int]
_STREAM_ID = re.compile(r"(\d{1,15})-(\d{1,15})")


class PositionError(ValueError):
    """A Last-Event-ID that is not one of ours."""


def parse_stream_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    match = _STREAM_ID.fullmatch(text)
    if match is None:
        raise PositionError(f"not a stream id: {text[:40]!r}")
    return int(match[1]), int(match[2])


def format_stream_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


Positions = dict[str, StreamId]

# Channels per connection are limited (SSE_MAX_CHANNELS_PER_CONNECTION); this bounds parsing work.
_MAX_POSITIONS = 256
_INDEXED = re.compile(r"(\d{1,3}):(.*)", re.DOTALL)


def channel_list_tag(channels: Sequence[str]) -> bytes:
    """Eight hex digits naming a connection's channel list (32-bit FNV-1a of the names joined by
    commas), so that an id's channel indexes are applied only to the list they were made for."""
    digest = 0x811C9DC5
    for byte in ",".join(channels).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return b"%08x" % digest


def parse_positions(last_event_id: str, channels: Sequence[str]) -> Positions:
    """Per-channel positions from an id this service sent, for a connection on `channels`.

    An id starts with `<channel>/<ms>-<seq>`: the event's own channel and id. On a connection with
    several channels the positions of the others follow, so that one Last-Event-ID resumes them all:
    `,~<tag>` (`channel_list_tag` of the connection's channels) then `,<index>:<ms>-<seq>` per
    channel, by its index in the connection's channel list. Ids of wire contract 1 named each
    channel instead (`,<channel>/<ms>-<seq>`) and are still read. Indexes made for another list
    than `channels` are ignored: those channels start as new ones.
    """
    parts = last_event_id.split(",", _MAX_POSITIONS)
    if len(parts) > _MAX_POSITIONS:
        raise PositionError(f"more than {_MAX_POSITIONS} positions in an event id")
    if len(parts) > 1 and parts[1].startswith("~"):
        positions = dict([_named(parts[0], last_event_id)])
        indexed = [_indexed(part, len(channels), last_event_id) for part in parts[2:]]
        if parts[1][1:].encode() == channel_list_tag(channels):
            positions.update((channels[index], position) for index, position in indexed)
        return positions
    return dict(_named(part, last_event_id) for part in parts)


def _named(part: str, last_event_id: str) -> tuple[str, StreamId]:
    channel, slash, stream_id = part.rpartition("/")
    if not slash or not is_valid_channel(channel):
        raise PositionError(f"not an event id of this service: {last_event_id[:80]!r}")
    return channel, parse_stream_id(stream_id)


def _indexed(part: str, count: int, last_event_id: str) -> tuple[int, StreamId]:
    match = _INDEXED.fullmatch(part)
    if match is None or int(match[1]) >= count:
        raise PositionError(f"not an event id of this service: {last_event_id[:80]!r}")
    return int(match[1]), parse_stream_id(match[2])


def format_positions(channels: Sequence[str], tag: bytes, own: str, positions: Positions) -> bytes:
    """The id's suffix after `<own channel>/<id>`: `,~<tag>` and the other channels' positions by
    index (see `parse_positions`); empty when no other channel has one."""
    others = b"".join(
        b",%d:%d-%d" % (index, *positions[channel])
        for index, channel in enumerate(channels)
        if channel != own and channel in positions
    )
    return b",~" + tag + others if others else b""


@dataclass(frozen=True, slots=True)
class Frame:
    """One event on its way from Redis (live or history) to the connections: encoded once, shared.

    `wire` is the frame as a one-channel connection writes it, its first line `id: <channel>/<id>`;
    a connection with several channels inserts their positions into that line (`with_positions`).
    """

    channel: str
    id: StreamId
    wire: bytes
    reset: bool = False

    def with_positions(self, suffix: bytes) -> bytes:
        """The frame with the connection's other positions (`format_positions`) in its id."""
        if not suffix:
            return self.wire
        end_of_id = self.wire.index(b"\n")
        return self.wire[:end_of_id] + suffix + self.wire[end_of_id:]


def event_frame(channel: str, stream_id: StreamId, envelope: Envelope) -> Frame:
    return Frame(channel, stream_id, encode_frame(channel, envelope))


def reset_frame(channel: str, stream_id: StreamId) -> Frame:
    """Tells the page that history it missed is gone: reload that channel's state."""
    data = b'{"channel":"%s","reason":"history trimmed"}' % channel.encode()
    wire = b"id: %s/%s\nevent: reset\ndata: %s\n\n" % (
        channel.encode(),
        format_stream_id(stream_id).encode(),
        data,
    )
    return Frame(channel, stream_id, wire, reset=True)


def encode_opening(retry_ms: int, channels: Sequence[str], start: Positions) -> bytes:
    """First bytes of every stream: the reconnect delay hint, where each channel starts, and a comment
    so proxies flush the headers.

    The block carries data under the service's own event type `OPENING_EVENT`, which pages do not
    listen to: clients that dispatch only blocks with data (npm `eventsource`) take its id as their
    last event id too, so one that reconnects before any event arrives resumes from here instead of
    from the newest event, as browsers do.
    """
    known = [channel for channel in channels if channel in start]
    if not known:
        return b"retry: %d\n: connected\n\n" % retry_ms
    own = known[0]
    tag = channel_list_tag(channels) if len(known) > 1 else b""
    suffix = format_positions(channels, tag, own, start)
    return b"retry: %d\nid: %s/%d-%d%s\nevent: %s\ndata: {}\n: connected\n\n" % (
        retry_ms,
        own.encode(),
        *start[own],
        suffix,
        OPENING_EVENT,
    )


def encode_farewell(retry_ms: int) -> bytes:
    """Last bytes of a stream ended by the server: come back (elsewhere) after `retry_ms`."""
    return b"retry: %d\n: reconnect\n\n" % retry_ms
