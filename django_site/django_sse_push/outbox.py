"""Sending the outbox: each channel's pending events oldest first, one sender per channel at a time.

Two guarantees meet here. Per channel, events reach Redis in the order of their rows: every sender
sends a channel's rows in id order from the oldest still pending, and stops at the channel's first
failure. Exactly once: every row carries an idempotency key that the Lua step remembers, so a row sent
again (its sender died before deleting it, or two senders raced) publishes nothing. Redis keeps a
channel's newest keys only (publish.lua): a sender repeats a row it sent but had not yet deleted, a
batch or so back, never thousands of events back.

Where the database can lock rows without waiting (PostgreSQL: `FOR UPDATE SKIP LOCKED`), a sender owns
a channel while it holds the lock on the channel's oldest row, its head, and sends only channels it
owns; other relays skip those channels instead of waiting or duplicating work. Locking any other row
would not do: `ORDER BY id LIMIT 1 ... SKIP LOCKED` would hand the next row to a second sender, which
would overtake the first. The lock lasts until the sent rows' deletion commits, so a sender killed
mid-batch leaves its rows pending, and the next owner's repeats are recognised by Redis.

Fairness: a sender locks one channel at a time, for one share of its batch, and commits before the
next, so a channel's backlog never holds the locks of other channels while it is sent; each channel
with pending rows gets an equal share of a pass. The fast path after a commit waits (briefly) for a
channel another sender holds instead of skipping it: skipping would leave its fresh event to the
relay's next pass when the owner had read the channel's rows before that event committed.

SQLite has no row locks: senders there run side by side without a transaction held across the sends
(which would block the site's writes) and rely on the order and the idempotency keys alone. Any two
in-order senders interleave into one in-order sequence, as the second send of a row publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models import Count, Min, QuerySet, Subquery
from django.utils import timezone

from django_sse_push._sending import Message, send
from django_sse_push.exceptions import ChannelRefusedError, PublishBackendError
from django_sse_push.models import OutboxEvent

# How long the fast path waits for a channel another sender is sending: that sender holds it for
# one share of its batch, a few milliseconds while Redis answers.
FAST_PATH_LOCK_WAIT_MS = 2000


@dataclass
class Progress:
    """What one round of sending did."""

    sent: int = 0
    duplicates: int = 0
    # Why sending stopped early (Redis is away); what was not sent stays pending.
    error: PublishBackendError | None = None
    # Channels Redis refused (each waits; the others went on), with why.
    refused: dict[str, ChannelRefusedError] = field(default_factory=dict)
    # Some channel had more pending than its share: another pass is due at once.
    more: bool = False

    @property
    def handled(self) -> int:
        return self.sent + self.duplicates

    def add(self, channel: str, other: Progress) -> None:
        self.sent += other.sent
        self.duplicates += other.duplicates
        if isinstance(other.error, ChannelRefusedError):
            self.refused[channel] = other.error
        else:
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


def send_channel(channel: str, *, using: str, limit: int, wait: bool = False) -> Progress:
    """Sends up to `limit` pending events of one channel, oldest first, unless another sender owns it
    (with `wait`, once the other sender is done with it, for up to FAST_PATH_LOCK_WAIT_MS)."""
    if not _locks_rows(using):
        return _send_rows(_pending(channel, using, limit), using)
    with transaction.atomic(using=using):
        if not _own(channel, using, wait):
            return Progress()
        return _send_rows(_pending(channel, using, limit), using)


def send_pending(*, using: str, limit: int, skip: Collection[str] = ()) -> Progress:
    """One pass: up to `limit` events, an equal share for each channel with pending events (but
    those in `skip`), the channels with the oldest events first; stops when Redis is away."""
    progress = Progress()
    channels = _channels(using, limit, skip)
    share = max(1, limit // len(channels)) if channels else 0
    for channel in channels:
        done = send_channel(channel, using=using, limit=share)
        progress.add(channel, done)
        if progress.error is not None:
            break
        progress.more = progress.more or done.handled >= share
    return progress


def backlog(*, using: str) -> Backlog:
    found = OutboxEvent.objects.using(using).aggregate(pending=Count("id"), oldest=Min("created"))
    oldest = found["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(found["pending"], max(age, 0.0))


def _locks_rows(using: str) -> bool:
    return bool(connections[using].features.has_select_for_update_skip_locked)


def _channels(using: str, limit: int, skip: Collection[str]) -> list[str]:
    """Up to `limit` channels with pending rows, the one with the oldest row first; no lock taken."""
    rows = OutboxEvent.objects.using(using).exclude(channel__in=list(skip)).order_by()
    heads = rows.values("channel").annotate(oldest=Min("id")).order_by("oldest")
    return [head["channel"] for head in heads[:limit]]


def _head_of(channel: str, using: str) -> QuerySet[OutboxEvent]:
    """The channel's oldest pending row: one look into the (channel, id) index."""
    rows = OutboxEvent.objects.using(using)
    return rows.filter(id=Subquery(rows.filter(channel=channel).order_by("id").values("id")[:1]))


def _own(channel: str, using: str, wait: bool) -> bool:
    """Locks the channel's head in the current transaction: True once this sender owns the channel,
    False when another does (without `wait`) or nothing of the channel is pending."""
    if not wait or connections[using].vendor != "postgresql":
        return bool(list(_head_of(channel, using).select_for_update(skip_locked=True)))
    with connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {FAST_PATH_LOCK_WAIT_MS}")
    # The head a waiting sender gets is gone when the owner's deletions commit: look again.
    while not list(_head_of(channel, using).select_for_update()):
        if not OutboxEvent.objects.using(using).filter(channel=channel).exists():
            return False
    return True


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
