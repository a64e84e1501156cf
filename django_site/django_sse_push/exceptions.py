"""Why a publish was refused (catch PublishError for all of them), or a ticket could not be handled."""

from __future__ import annotations


class PublishError(Exception):
    """Base class: the event was not published."""


class InvalidChannelError(PublishError, ValueError):
    """The channel name breaks the naming rule shared with the SSE service."""


class InvalidEventTypeError(PublishError, ValueError):
    """The event type breaks the naming rule shared with the SSE service."""


class InvalidIdempotencyKeyError(PublishError, ValueError):
    """The idempotency key is not 1-128 printable ASCII characters without spaces."""


class PayloadNotSerializableError(PublishError, TypeError):
    """The data cannot be turned into JSON text, or, sent as text, is not a non-empty str of UTF-8."""


class PayloadTooLargeError(PublishError):
    """The JSON text (or the text) is over SSE_MAX_PAYLOAD_BYTES; the SSE service would drop it."""


class PublishBackendError(PublishError):
    """Redis failed or could not be reached; the event may or may not have gone out."""


class ChannelRefusedError(PublishBackendError):
    """Redis is up but refused this channel's publish (one of its keys holds the wrong type, say):
    other channels' events still go out; this channel's wait until it is repaired."""


class TicketBackendError(Exception):
    """Redis failed while issuing or revoking tickets."""
