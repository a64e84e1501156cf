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
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from prometheus_client import Counter

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

    def send_after_commit() -> None:
        _send_after_commit(message.channel, alias)

    # A named function, not a partial: Django's robust handler logs the callable's __qualname__.
    transaction.on_commit(send_after_commit, using=alias, robust=True)


def _send_after_commit(channel: str, using: str) -> None:
    """The fast path. The data is committed by now, so nothing here may fail the request: whatever
    goes wrong leaves the event pending for the relay, is counted, and logs."""
    try:
        progress = outbox.send_channel(channel, using=using, limit=FAST_PATH_LIMIT, wait=True)
    except DatabaseError:
        _unsent_counter().labels("database").inc()
        logger.warning("events of %r not sent after commit, left to the relay", channel, exc_info=True)
        return
    except Exception as exc:  # a committed request must not turn into a 500
        _unsent_counter().labels("error").inc()
        _log_once(exc)
        return
    if progress.error is not None:
        _unsent_counter().labels("redis").inc()
        logger.warning("events of %r not sent after commit, left to the relay: %s", channel, progress.error)


# The kinds of unexpected failure already logged with their traceback (a broken setting fails every
# commit the same way: once is enough to find it; the counter says how often).
_logged: set[type[BaseException]] = set()


def _log_once(exc: Exception) -> None:
    if type(exc) in _logged:
        return
    _logged.add(type(exc))
    logger.error(
        "events not sent after commit, left to the relay (logged once per kind of error; "
        "sse_publish_unsent_after_commit_total counts them): %s",
        exc,
        exc_info=exc,
    )


@cache
def _unsent_counter() -> Counter:
    """On prometheus_client's default registry, which the site's own metrics view serves, if any."""
    return Counter(
        "sse_publish_unsent_after_commit",
        "Commits whose events the fast path left to the relay, by why: redis, database or error",
        ["reason"],
    )
