"""The wire contract in code: channel names, Redis names, the pub/sub envelope and the SSE frame.

Everything here mirrors the "Wire contract" section of README.md, which is the only thing this service
shares with the Django site. Change both together or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHANNEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
ENVELOPE_VERSION = b"v1"
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


def parse_positions(last_event_id: str) -> Positions:
    """Per-channel positions from an id this service sent.

    An id is `<channel>/<ms>-<seq>`: the event's own channel and id. On a connection with several
    channels, the positions of its other channels follow, each as `,<channel>/<ms>-<seq>`, so a
    reconnect resumes every channel exactly from one `Last-Event-ID`.
    """
    parts = last_event_id.split(",", _MAX_POSITIONS)
    if len(parts) > _MAX_POSITIONS:
        raise PositionError(f"more than {_MAX_POSITIONS} positions in an event id")
    positions: Positions = {}
    for part in parts:
        channel, slash, stream_id = part.rpartition("/")
        if not slash or not is_valid_channel(channel):
            raise PositionError(f"not an event id of this service: {last_event_id[:80]!r}")
        positions[channel] = parse_stream_id(stream_id)
    return positions


def format_positions(positions: Positions) -> bytes:
    """The `,<channel>/<id>` suffix for these positions (see `parse_positions`)."""
    return b"".join(b",%s/%d-%d" % (channel.encode(), *position) for channel, position in positions.items())


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

    def with_positions(self, others: Positions) -> bytes:
        if not others:
            return self.wire
        end_of_id = self.wire.index(b"\n")
        return self.wire[:end_of_id] + format_positions(others) + self.wire[end_of_id:]


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


def encode_opening(retry_ms: int, start: Positions) -> bytes:
    """First bytes of every stream: the reconnect delay hint, where each channel starts, and a comment
    so proxies flush the headers.

    The `id:` line carries no data, so a browser dispatches nothing but takes it as its last event id:
    one that reconnects before any event arrives resumes from here instead of from the newest event.
    """
    if not start:
        return b"retry: %d\n: connected\n\n" % retry_ms
    first, *others = start.items()
    own = b"%s/%d-%d" % (first[0].encode(), *first[1])
    return b"retry: %d\nid: %s%s\n: connected\n\n" % (retry_ms, own, format_positions(dict(others)))


def encode_farewell(retry_ms: int) -> bytes:
    """Last bytes of a stream ended by the server: come back (elsewhere) after `retry_ms`."""
    return b"retry: %d\n: reconnect\n\n" % retry_ms
