"""The outbox: events written in the same transaction as the data they describe, until Redis has them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """One event waiting to be published: a rollback drops it with the data, a commit keeps both.

    Rows are deleted once Redis has the event. The id orders a channel's events (commit order, as far
    as concurrent transactions have one); the idempotency key makes a second send of the same row
    publish nothing, so a sender that dies between publishing and deleting duplicates nothing.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=128)
    event = models.CharField(max_length=64, blank=True)  # "" for the default type
    data = models.BinaryField()  # the event's data exactly as sent: JSON text, or text as given
    idempotency_key = models.CharField(max_length=128)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        indexes = (models.Index(fields=("channel", "id"), name="sse_outbox_channel_id"),)

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk}"
