"""The checks a publish passes before anything is sent, with the rules from the wire contract
(docs/wire-contract.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from django_sse_push.exceptions import (
    InvalidChannelError,
    InvalidEventTypeError,
    InvalidIdempotencyKeyError,
    PayloadNotSerializableError,
    PayloadTooLargeError,
)

CHANNEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
EVENT_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
IDEMPOTENCY_KEY_RE = re.compile(r"[!-~]{1,128}")
DEFAULT_EVENT_TYPE = "message"


def validate_channel(channel: object) -> str:
    """Return the channel name, or raise InvalidChannelError saying which rule it breaks."""
    if not isinstance(channel, str):
        raise InvalidChannelError(f"channel must be a str, got {type(channel).__name__}")
    # fullmatch, not match with `$`: `$` would let a trailing newline through.
    if not CHANNEL_RE.fullmatch(channel):
        raise InvalidChannelError(
            f"invalid channel {channel!r}: use 1-128 ASCII letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit"
        )
    return channel


def validate_event_type(event: object) -> str:
    """Return the event type as sent on the wire: "" for the default type `message`."""
    if event is None or event == "" or event == DEFAULT_EVENT_TYPE:
        return ""
    if not isinstance(event, str):
        raise InvalidEventTypeError(f"event type must be a str or None, got {type(event).__name__}")
    if not EVENT_TYPE_RE.fullmatch(event):
        raise InvalidEventTypeError(
            f"invalid event type {event!r}: use 1-64 ASCII letters, digits, '_', '.' or '-', "
            f"starting with a letter (or None for the default type)"
        )
    return event


def validate_idempotency_key(key: object) -> str | None:
    """Return the key (None: no key), or raise InvalidIdempotencyKeyError."""
    if key is None:
        return None
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidIdempotencyKeyError(
            f"invalid idempotency key {key!r}: use 1-128 printable ASCII characters without spaces"
        )
    return key


def encode_data(data: Any, max_bytes: int) -> bytes:
    """Serialise data to compact JSON, UTF-8 encoded, within the size limit."""
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and JSON.parse in the browser rejects them.
        text = json.dumps(
            data,
            cls=DjangoJSONEncoder,
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        # Strict encoding: a lone surrogate (e.g. from json.loads('"\\ud800"')) is not UTF-8.
        encoded = text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise PayloadNotSerializableError(f"data cannot be serialised to JSON: {exc}") from exc
    return _within_limit(encoded, max_bytes, "UTF-8 JSON")


def encode_text(text: object, max_bytes: int) -> bytes:
    """A str sent as it is (an HTML fragment, say), UTF-8 encoded: non-empty, as browsers dispatch no
    event with empty data, and within the size limit."""
    try:
        if not isinstance(text, str):
            raise TypeError(f"as_text needs a str, got {type(text).__name__}")
        if not text:
            raise ValueError("as_text needs a non-empty str: browsers drop events with empty data")
        encoded = text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise PayloadNotSerializableError(f"data cannot be serialised to text: {exc}") from exc
    return _within_limit(encoded, max_bytes, "UTF-8 text")


def _within_limit(encoded: bytes, max_bytes: int, what: str) -> bytes:
    if len(encoded) > max_bytes:
        raise PayloadTooLargeError(
            f"data is {len(encoded)} bytes as {what}, over the limit of {max_bytes} "
            f"(SSE_MAX_PAYLOAD_BYTES); the SSE service would drop it"
        )
    return encoded
