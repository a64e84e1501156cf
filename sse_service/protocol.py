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

    def channel_of(self, pubsub_channel: bytes) -> str:
        """Inverse of `pubsub_channel`."""
        return pubsub_channel[len(self.prefix) + 2 : -1].decode()


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


def encode_preamble(retry_ms: int) -> bytes:
    """First bytes of every stream: the reconnect delay hint, and a comment so proxies flush headers."""
    return b"retry: %d\n: connected\n\n" % retry_ms


HEARTBEAT = b": ping\n\n"
