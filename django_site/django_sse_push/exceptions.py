"""Why a publish was refused (catch PublishError for all of them), or a ticket could not be handled."""

from __future__ import annotations


class PublishError(Exception):
    """Base class: the event was not published."""


class InvalidChannelError(PublishError, ValueError):
    """The channel name breaks the naming rule shared with the SSE service."""


class InvalidEventTypeError(PublishError, ValueError):
    """The event type breaks the naming rule shared with the SSE service."""


class PayloadNotSerializableError(PublishError, TypeError):
    """The data cannot be turned into JSON text."""


class PayloadTooLargeError(PublishError):
    """The JSON text is over SSE_MAX_PAYLOAD_BYTES; the SSE service would drop it."""


class PublishBackendError(PublishError):
    """Redis failed or could not be reached; the event may or may not have gone out."""


class TicketBackendError(Exception):
    """Redis failed while issuing or revoking tickets."""
