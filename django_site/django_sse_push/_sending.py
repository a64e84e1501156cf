"""One event on its way to Redis: checked and encoded once (`prepare`), then run through the Lua step
(`send`), from `publish()` at once or from the outbox after a commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, get_publish_script, publish_command
from django_sse_push.conf import PushSettings, push_settings
from django_sse_push.exceptions import ChannelRefusedError, PublishBackendError
from django_sse_push.validation import encode_data, encode_text, validate_channel, validate_event_type


@dataclass(frozen=True)
class Message:
    channel: str
    event: str  # "" for the default type
    data: bytes  # exactly what the browser's `data` will be, UTF-8


@dataclass(frozen=True)
class Sent:
    event_id: str
    # Redis already had this idempotency key: the id is the first publish's, nothing went out now.
    duplicate: bool


def remembered_keys(configured: PushSettings) -> int:
    """How many of a channel's newest idempotency keys Redis keeps: as many as its stream keeps
    events, and at least ten relay batches (a sender repeats only rows it sent but had not yet
    deleted, at most a batch back on PostgreSQL; a few where senders run side by side on SQLite)."""
    return max(configured.STREAM_MAXLEN, 10 * configured.OUTBOX_BATCH_SIZE)


def prepare(channel: str, data: Any, event: str | None, *, as_text: bool) -> Message:
    """Raises a PublishError subclass for bad input, before anything is sent or stored."""
    limit: int = push_settings().MAX_PAYLOAD_BYTES
    return Message(
        channel=validate_channel(channel),
        event=validate_event_type(event),
        data=encode_text(data, limit) if as_text else encode_data(data, limit),
    )


def send(message: Message, idempotency_key: str | None = None) -> Sent:
    """Runs the publish script; raises PublishBackendError when Redis fails."""
    configured = push_settings()
    prefix, channel = configured.KEY_PREFIX, message.channel
    script_keys = [keys.stream_key(prefix, channel), keys.trimmed_key(prefix, channel)]
    remember: list[str | int] = []
    if idempotency_key is not None:
        script_keys += [keys.idempotency_key(prefix, channel), keys.idempotency_times_key(prefix, channel)]
        remember = [idempotency_key, configured.IDEMPOTENCY_SECONDS * 1000, remembered_keys(configured)]
    try:
        # In here: the first use creates the client, which a Redis Cluster with no node up refuses.
        command = publish_command()
        result = get_publish_script()(
            keys=script_keys,
            args=[
                keys.pubsub_channel(prefix, channel),
                message.event,
                message.data,
                configured.STREAM_MAXLEN,
                command,
                *remember,
            ],
        )
    except REDIS_ERRORS as exc:
        if _refuses_the_channel(exc):
            raise ChannelRefusedError(f"Redis refused to publish to {channel!r}: {exc}") from exc
        raise PublishBackendError(f"could not publish to {channel!r}: {exc}") from exc
    if idempotency_key is None:
        return Sent(_text(result), duplicate=False)
    event_id, repeat = result
    return Sent(_text(event_id), duplicate=bool(repeat))


# Error answers that concern the whole server (or node), not one channel's keys: Redis is away for all.
_SERVER_WIDE = ("MISCONF", "BUSY", "NOREPLICAS")


def _refuses_the_channel(exc: Exception) -> bool:
    """An error answer about this channel's own keys (WRONGTYPE, an ACL on its keys, a script error
    on its data), as opposed to Redis being unreachable, read-only, out of memory or failing over,
    which redis-py raises as their own classes or as the server-wide codes above."""
    if type(exc) not in (redis.ResponseError, redis.exceptions.NoPermissionError):
        return False
    return not str(exc).startswith(_SERVER_WIDE)


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
