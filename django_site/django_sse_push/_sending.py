"""One event on its way to Redis: checked and encoded once (`prepare`), then run through the Lua step
(`send`), from `publish()` at once or from the outbox after a commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_sse_push import keys
from django_sse_push._redis import REDIS_ERRORS, get_publish_script, publish_command
from django_sse_push.conf import push_settings
from django_sse_push.exceptions import PublishBackendError
from django_sse_push.policies import policy_for
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
        remember = [idempotency_key, configured.IDEMPOTENCY_SECONDS * 1000]
    try:
        # In here: the first use creates the client, which a Redis Cluster with no node up refuses.
        command = publish_command()
        result = get_publish_script()(
            keys=script_keys,
            args=[
                keys.pubsub_channel(prefix, channel),
                message.event,
                message.data,
                policy_for(channel).history,
                command,
                *remember,
            ],
        )
    except REDIS_ERRORS as exc:
        raise PublishBackendError(f"could not publish to {channel!r}: {exc}") from exc
    if idempotency_key is None:
        return Sent(_text(result), duplicate=False)
    event_id, repeat = result
    return Sent(_text(event_id), duplicate=bool(repeat))


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
