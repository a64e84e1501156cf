"""Publish events to browsers: at once with `publish()`, or with the data's commit through the outbox.

`publish()` is synchronous (it waits for Redis); from async code, wrap it in
`asgiref.sync.sync_to_async`. `publish_on_commit()` writes the event into the outbox table in the
caller's transaction, so it is as durable as the data: a rollback drops both. Once the transaction
commits, the event is sent at once (the fast path); if Redis cannot take it then, it stays in the
outbox and the relay (`manage.py sse_relay`) sends it when Redis is back. Either way Redis publishes
it exactly once and, per channel, in commit order (django_sse_push/outbox.py says how).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction

from django_sse_push import outbox
from django_sse_push._sending import prepare, send
from django_sse_push.validation import validate_idempotency_key

__all__ = ["publish", "publish_on_commit"]

logger = logging.getLogger(__name__)

# The most events one commit's fast path sends: its own, after any older ones of the channel still
# pending. A longer backlog is the relay's, so a request after an outage does not carry it.
FAST_PATH_LIMIT = 20


def publish(
    channel: str,
    data: Any,
    *,
    event: str | None = None,
    idempotency_key: str | None = None,
    as_text: bool = False,
) -> str:
    """Publish `data` on `channel` now and return the event id `<ms>-<seq>`.

    `data` is sent as JSON, or with `as_text=True` as the str it is (an HTML fragment, say). With an
    `idempotency_key`, a repeat of the key on this channel within SSE_IDEMPOTENCY_SECONDS publishes
    nothing and returns the first publish's id, so a caller may retry after a PublishBackendError.

    Raises a PublishError subclass: InvalidChannelError, InvalidEventTypeError,
    InvalidIdempotencyKeyError, PayloadNotSerializableError or PayloadTooLargeError before anything is
    sent, and PublishBackendError when Redis fails (the event may or may not have gone out).
    """
    key = validate_idempotency_key(idempotency_key)
    return send(prepare(channel, data, event, as_text=as_text), key).event_id


def publish_on_commit(
    channel: str,
    data: Any,
    *,
    event: str | None = None,
    using: str | None = None,
    as_text: bool = False,
    idempotency_key: str | None = None,
) -> None:
    """Publish once the current transaction on database `using` commits; nothing on rollback.

    Validation and serialisation happen now, so bad input raises here rather than after the commit,
    and later changes to `data` do not leak into the event. The event is stored in the outbox with
    the transaction (outside one, at once), so it is never lost: when Redis fails after the commit,
    nothing is raised; the relay sends it later. `idempotency_key` (default: a new one) is the key
    the event is published with, e.g. the one a failed `publish()` used.
    """
    alias = using or DEFAULT_DB_ALIAS
    message = prepare(channel, data, event, as_text=as_text)
    outbox.record(message, using=alias, idempotency_key=validate_idempotency_key(idempotency_key))
    transaction.on_commit(partial(_send_after_commit, message.channel, alias), using=alias, robust=True)


def _send_after_commit(channel: str, using: str) -> None:
    """The fast path: whatever fails here leaves the event pending for the relay, and only logs."""
    try:
        progress = outbox.send_channel(channel, using=using, limit=FAST_PATH_LIMIT)
    except DatabaseError:
        logger.warning("events of %r not sent after commit, left to the relay", channel, exc_info=True)
        return
    if progress.error is not None:
        logger.warning("events of %r not sent after commit, left to the relay: %s", channel, progress.error)
