"""The outbox relay: sends what the fast path after a commit could not, for as long as it runs.

It sends pending events channel by channel, a fair share each (django_sse_push/outbox.py), and keeps
its metrics (`RelayMetrics`, labelled by database) for Prometheus. What goes wrong is told apart, so
that one kind never passes for another: Redis away (every channel waits, with a growing backoff), a
channel Redis refuses (that channel alone waits, with its own backoff; the others go on), the database
failing, and the outbox table missing (`migrate` was not run). Each logs one line when it starts and
one when it ends. Any number of relays may run against one database; one `Relay` serves one database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from django.db import DatabaseError, connections
from prometheus_client import CollectorRegistry, Counter, Gauge

from django_sse_push import outbox
from django_sse_push.exceptions import ChannelRefusedError
from django_sse_push.models import OutboxEvent

logger = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 5.0


class Phase(Enum):
    """What the relay is doing; the value is the line logged when a phase other than SENDING ends."""

    SENDING = ""
    REDIS_AWAY = "Redis takes the outbox's events again (database %r), after %.1f s"
    DATABASE_FAILING = "the outbox's database %r answers again, after %.1f s"
    NOT_MIGRATED = "the outbox table is there on database %r now, after %.1f s"


@dataclass
class RelayMetrics:
    """On a registry of the relay's own, which `sse_relay --metrics-port` serves; each sample is
    labelled with the database alias whose outbox it describes."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        by = ["database"]
        self.pending = Gauge("sse_outbox_pending_events", "Events in the outbox", by, registry=self.registry)
        self.oldest_age = Gauge(
            "sse_outbox_oldest_event_age_seconds",
            "How long the oldest event in the outbox has waited (0 when empty)",
            by,
            registry=self.registry,
        )
        self.sent = Counter(
            "sse_outbox_events_sent",
            "Events this relay published (the fast path missed them)",
            by,
            registry=self.registry,
        )
        self.retried = Counter(
            "sse_outbox_send_retries",
            "Sends that failed (Redis away) and are retried later",
            by,
            registry=self.registry,
        )
        self.duplicates = Counter(
            "sse_outbox_duplicates",
            "Events Redis already had (sent before, not yet deleted): published nothing",
            by,
            registry=self.registry,
        )
        self.refused = Counter(
            "sse_outbox_refused_sends",
            "Sends Redis refused for their channel (a key of the wrong type, say); retried later",
            by,
            registry=self.registry,
        )
        self.refused_channels = Gauge(
            "sse_outbox_refused_channels",
            "Channels whose events wait because Redis refused their last send",
            by,
            registry=self.registry,
        )
        self.redis_up = Gauge(
            "sse_outbox_redis_up", "1 unless the last send found Redis away", by, registry=self.registry
        )


@dataclass
class _Refusal:
    since: float
    backoff: float = FIRST_BACKOFF_SECONDS
    retry_at: float = 0.0


@dataclass
class Relay:
    """Passes over one database's outbox: at once while channels have more than their share pending,
    every `poll_seconds` when idle, and with a backoff from FIRST_ to MAX_BACKOFF_SECONDS while Redis
    is away, the database fails or its outbox table is missing."""

    metrics: RelayMetrics
    using: str
    batch_size: int
    poll_seconds: float
    stopping: threading.Event = field(default_factory=threading.Event)
    phase: Phase = field(default=Phase.SENDING, init=False)
    # When the current phase began (monotonic).
    _since: float = field(default_factory=time.monotonic, init=False)
    _backoff: float = field(default=FIRST_BACKOFF_SECONDS, init=False)
    _refused: dict[str, _Refusal] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.metrics.redis_up.labels(self.using).set(1)
        for metric in (
            self.metrics.sent,
            self.metrics.retried,
            self.metrics.duplicates,
            self.metrics.refused,
        ):
            metric.labels(self.using)

    def run(self) -> None:
        """Until `stopping` is set; a pass in progress finishes first."""
        try:
            while not self.stopping.is_set():
                self.stopping.wait(self.run_once())
        finally:
            connections[self.using].close()

    def run_once(self) -> float:
        """One pass; returns how long to wait before the next."""
        now = time.monotonic()
        skip = {channel for channel, refusal in self._refused.items() if refusal.retry_at > now}
        try:
            progress = outbox.send_pending(using=self.using, limit=self.batch_size, skip=skip)
            pending = self._update_backlog()
        except DatabaseError as exc:
            # Reconnect on the next pass: the database may have restarted under the connection.
            connections[self.using].close()
            self._database_failed(exc)
            return self._next_backoff()
        label = self.using
        self.metrics.sent.labels(label).inc(progress.sent)
        self.metrics.duplicates.labels(label).inc(progress.duplicates)
        self._channels_answered(progress, skip, pending)
        if progress.error is not None:
            self.metrics.retried.labels(label).inc()
            self.metrics.redis_up.labels(label).set(0)
            self._enter(
                Phase.REDIS_AWAY,
                "Redis did not take the outbox's events; retrying with backoff "
                f"({pending} pending): {progress.error}",
            )
            return self._next_backoff()
        self.metrics.redis_up.labels(label).set(1)
        self._enter(Phase.SENDING, "")
        self._backoff = FIRST_BACKOFF_SECONDS
        return 0.0 if progress.more else self.poll_seconds

    def _update_backlog(self) -> int:
        found = outbox.backlog(using=self.using)
        self.metrics.pending.labels(self.using).set(found.pending)
        self.metrics.oldest_age.labels(self.using).set(found.oldest_age_seconds)
        return found.pending

    def _channels_answered(self, progress: outbox.Progress, skipped: set[str], pending: int) -> None:
        """Refused channels wait on their own; those tried again and not refused are taken again."""
        now = time.monotonic()
        for channel, error in progress.refused.items():
            self._channel_refused(channel, error, now, pending)
        if progress.error is None:
            for channel in [c for c in self._refused if c not in skipped and c not in progress.refused]:
                refusal = self._refused.pop(channel)
                logger.warning(
                    "Redis takes the events of channel %r again (database %r), after %.1f s",
                    channel,
                    self.using,
                    now - refusal.since,
                )
        self.metrics.refused_channels.labels(self.using).set(len(self._refused))

    def _channel_refused(self, channel: str, error: ChannelRefusedError, now: float, pending: int) -> None:
        self.metrics.refused.labels(self.using).inc()
        refusal = self._refused.get(channel)
        if refusal is None:
            refusal = self._refused[channel] = _Refusal(since=now)
            logger.warning(
                "Redis refuses the events of channel %r (database %r, %d pending in all); the channel "
                "waits and is retried alone with backoff, the others go on: %s",
                channel,
                self.using,
                pending,
                error.__cause__ or error,
            )
        refusal.retry_at = now + refusal.backoff
        refusal.backoff = min(refusal.backoff * 2, MAX_BACKOFF_SECONDS)

    def _database_failed(self, exc: DatabaseError) -> None:
        try:
            migrated = OutboxEvent._meta.db_table in connections[self.using].introspection.table_names()
        except DatabaseError:
            connections[self.using].close()
            migrated = True
        if not migrated:
            self._enter(
                Phase.NOT_MIGRATED,
                f"the outbox table {OutboxEvent._meta.db_table} does not exist on database "
                f"{self.using!r}: run `manage.py migrate --database {self.using}`; checking again "
                f"every {MAX_BACKOFF_SECONDS:.0f} s",
            )
        else:
            self._enter(
                Phase.DATABASE_FAILING,
                f"the outbox's database {self.using!r} failed; retrying with backoff: {exc}",
            )

    def _enter(self, phase: Phase, message: str) -> None:
        """Logs `message` when entering `phase`, and the end of the phase left."""
        if phase is self.phase:
            return
        if self.phase is not Phase.SENDING:
            logger.warning(self.phase.value, self.using, time.monotonic() - self._since)
        self.phase, self._since = phase, time.monotonic()
        if message:
            logger.warning("%s", message)

    def _next_backoff(self) -> float:
        wait, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        return wait
