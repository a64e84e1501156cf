"""Sending the outbox: each channel's pending events oldest first, one sender per channel at a time.

Two guarantees meet here. Per channel, events reach Redis in the order of their rows: every sender
sends a channel's rows in id order from the oldest still pending, and stops at the channel's first
failure. Exactly once: every row carries an idempotency key that the Lua step remembers, so a row sent
again (its sender died before deleting it, or two senders raced) publishes nothing.

Where the database can lock rows without waiting (PostgreSQL: `FOR UPDATE SKIP LOCKED`), a sender owns
a channel while it holds the lock on the channel's oldest row, its head, and sends only channels it
owns; other senders skip those channels instead of waiting or duplicating work. Locking any other row
would not do: `ORDER BY id LIMIT 1 ... SKIP LOCKED` would hand the next row to a second sender, which
would overtake the first. The lock lasts until the sent rows' deletion commits, so a sender killed
mid-batch leaves its rows pending, and the next owner's repeats are recognised by Redis.

SQLite has no row locks: senders there run side by side without a transaction held across the sends
(which would block the site's writes) and rely on the order and the idempotency keys alone. Any two
in-order senders interleave into one in-order sequence, as the second send of a row publishes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from django.db import connections, transaction
from django.db.models import Count, Min, QuerySet, Subquery
from django.utils import timezone

from django_sse_push._sending import Message, send
from django_sse_push.exceptions import PublishBackendError
from django_sse_push.models import OutboxEvent


@dataclass
class Progress:
    """What one round of sending did."""

    sent: int = 0
    duplicates: int = 0
    # Why sending stopped early (Redis failed); what was not sent stays pending.
    error: PublishBackendError | None = None

    @property
    def handled(self) -> int:
        return self.sent + self.duplicates

    def add(self, other: Progress) -> None:
        self.sent += other.sent
        self.duplicates += other.duplicates
        self.error = self.error or other.error


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_seconds: float


def record(message: Message, *, using: str, idempotency_key: str | None = None) -> OutboxEvent:
    """Stores the event in the caller's transaction on database `using`."""
    row: OutboxEvent = OutboxEvent.objects.using(using).create(
        channel=message.channel,
        event=message.event,
        data=message.data,
        idempotency_key=idempotency_key or uuid.uuid4().hex,
    )
    return row


def send_channel(channel: str, *, using: str, limit: int) -> Progress:
    """Sends up to `limit` pending events of one channel, oldest first, unless another sender owns it."""
    if not _locks_rows(using):
        return _send_rows(_pending(channel, using, limit), using)
    with transaction.atomic(using=using):
        if not list(_head_of(channel, using).select_for_update(skip_locked=True)):
            return Progress()
        return _send_rows(_pending(channel, using, limit), using)


def send_pending(*, using: str, limit: int) -> Progress:
    """Sends up to `limit` pending events, channel by channel, the channel with the oldest event first;
    stops at the first failure (Redis is away: the next try waits)."""
    progress = Progress()
    if not _locks_rows(using):
        _send_channels(_heads(using), using, limit, progress)
        return progress
    with transaction.atomic(using=using):
        _send_channels(_heads(using).select_for_update(skip_locked=True), using, limit, progress)
    return progress


def backlog(*, using: str) -> Backlog:
    found = OutboxEvent.objects.using(using).aggregate(pending=Count("id"), oldest=Min("created"))
    oldest = found["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(found["pending"], max(age, 0.0))


def _locks_rows(using: str) -> bool:
    return bool(connections[using].features.has_select_for_update_skip_locked)


def _heads(using: str) -> QuerySet[OutboxEvent]:
    """Each channel's oldest pending row, oldest first."""
    rows = OutboxEvent.objects.using(using)
    oldest = rows.order_by().values("channel").annotate(oldest=Min("id")).values("oldest")
    return rows.filter(id__in=oldest).order_by("id")


def _head_of(channel: str, using: str) -> QuerySet[OutboxEvent]:
    """The channel's oldest pending row: one look into the (channel, id) index."""
    rows = OutboxEvent.objects.using(using)
    return rows.filter(id=Subquery(rows.filter(channel=channel).order_by("id").values("id")[:1]))


def _send_channels(heads: QuerySet[OutboxEvent], using: str, limit: int, progress: Progress) -> None:
    """Channel by channel. A channel whose send Redis answered with an error (a key of the wrong type,
    say) waits, and the others go on; when Redis cannot be reached, the others would fail too."""
    for channel in list(heads.values_list("channel", flat=True)[:limit]):
        done = _send_rows(_pending(channel, using, limit - progress.handled), using)
        progress.add(done)
        if done.error is not None and not isinstance(done.error.__cause__, redis.ResponseError):
            return
        if progress.handled >= limit:
            return


def _pending(channel: str, using: str, limit: int) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.using(using).filter(channel=channel).order_by("id")[:limit])


def _send_rows(rows: list[OutboxEvent], using: str) -> Progress:
    """Sends `rows` (one channel's, in order) until one fails, then deletes those that went out."""
    progress = Progress()
    done: list[int] = []
    for row in rows:
        message = Message(row.channel, row.event, bytes(row.data))
        try:
            sent = send(message, row.idempotency_key)
        except PublishBackendError as exc:
            progress.error = exc
            break
        done.append(row.id)
        if sent.duplicate:
            progress.duplicates += 1
        else:
            progress.sent += 1
    if done:
        OutboxEvent.objects.using(using).filter(id__in=done).delete()
    return progress
