"""The checks a publish passes before anything is sent, with the rules from the README's wire contract."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from django_sse_push.exceptions import (
    InvalidChannelError,
    InvalidEventTypeError,
    PayloadNotSerializableError,
    PayloadTooLargeError,
)

CHANNEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
EVENT_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
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


def encode_data(data: Any, max_bytes: int, *, as_text: bool = False) -> bytes:
    """Serialise data to compact JSON, UTF-8 encoded, within the size limit.

    With `as_text`, data is a non-empty str sent as it is (an HTML fragment for htmx, say): empty
    data would reach no browser, as they do not dispatch an event whose data is empty.
    """
    form = "text" if as_text else "JSON"
    try:
        if as_text:
            text = _non_empty_text(data)
        else:
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
        raise PayloadNotSerializableError(f"data cannot be serialised to {form}: {exc}") from exc
    if len(encoded) > max_bytes:
        raise PayloadTooLargeError(
            f"data is {len(encoded)} bytes as UTF-8 {form}, over the limit of {max_bytes} "
            f"(SSE_MAX_PAYLOAD_BYTES); the SSE service would drop it"
        )
    return encoded


def _non_empty_text(data: object) -> str:
    if not isinstance(data, str):
        raise TypeError(f"as_text needs a str, got {type(data).__name__}")
    if not data:
        raise ValueError("as_text needs a non-empty str: browsers drop events with empty data")
    return data
