"""Publish events to browsers: validate, serialise, and run the Lua step from the README's wire contract.

`publish()` is synchronous (it waits for Redis); from async code, wrap it in
`asgiref.sync.sync_to_async`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, get_publish_script, publish_command
from django_sse_push.conf import push_settings
from django_sse_push.exceptions import PublishBackendError
from django_sse_push.validation import encode_data, validate_channel, validate_event_type

__all__ = ["publish", "publish_on_commit"]


@dataclass(frozen=True)
class _Message:
    channel: str
    event: str
    data: bytes


def publish(channel: str, data: Any, *, event: str | None = None, as_text: bool = False) -> str:
    """Publish `data` as JSON on `channel` and return the event id `<ms>-<seq>`.

    With `as_text=True`, `data` is a non-empty str sent as it is, not as JSON.

    Raises a PublishError subclass: InvalidChannelError, InvalidEventTypeError,
    PayloadNotSerializableError or PayloadTooLargeError before anything is sent, and
    PublishBackendError when Redis fails.
    """
    return _send(_prepare(channel, data, event, as_text))


def publish_on_commit(
    channel: str, data: Any, *, event: str | None = None, using: str | None = None, as_text: bool = False
) -> None:
    """Publish once the current transaction commits; nothing is sent on rollback.

    Validation and serialisation happen now, so bad input raises here rather than after the
    commit, and later changes to `data` do not leak into the event.
    """
    message = _prepare(channel, data, event, as_text)
    transaction.on_commit(partial(_send, message), using=using)


def _prepare(channel: str, data: Any, event: str | None, as_text: bool) -> _Message:
    return _Message(
        channel=validate_channel(channel),
        event=validate_event_type(event),
        data=encode_data(data, push_settings().MAX_PAYLOAD_BYTES, as_text=as_text),
    )


def _send(message: _Message) -> str:
    prefix: str = push_settings().KEY_PREFIX
    try:
        event_id = get_publish_script()(
            keys=[keys.stream_key(prefix, message.channel), keys.trimmed_key(prefix, message.channel)],
            args=[
                keys.pubsub_channel(prefix, message.channel),
                message.event,
                message.data,
                push_settings().STREAM_MAXLEN,
                publish_command(),
            ],
        )
    except REDIS_ERRORS as exc:
        raise PublishBackendError(f"could not publish to {message.channel!r}: {exc}") from exc
    return event_id.decode("ascii") if isinstance(event_id, bytes) else str(event_id)
