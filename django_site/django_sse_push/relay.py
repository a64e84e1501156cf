"""The outbox relay: sends what the fast path after a commit could not, for as long as it runs.

It sends pending events oldest first (django_sse_push/outbox.py), waits with a growing backoff while
Redis is away, logs one line when an outage starts and one when it ends, and keeps its metrics
(`RelayMetrics`) for Prometheus. Any number may run against one database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.db import DatabaseError, connections
from prometheus_client import CollectorRegistry, Counter, Gauge

from django_sse_push import outbox

logger = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 5.0


@dataclass
class RelayMetrics:
    """On a registry of the relay's own, which `sse_relay --metrics-port` serves."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.pending = Gauge("sse_outbox_pending_events", "Events in the outbox", registry=self.registry)
        self.oldest_age = Gauge(
            "sse_outbox_oldest_event_age_seconds",
            "How long the oldest event in the outbox has waited (0 when empty)",
            registry=self.registry,
        )
        self.sent = Counter(
            "sse_outbox_events_sent",
            "Events this relay published (the fast path missed them)",
            registry=self.registry,
        )
        self.retried = Counter(
            "sse_outbox_send_retries",
            "Sends that failed (Redis away) and are retried later",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "sse_outbox_duplicates",
            "Events Redis already had (sent before, not yet deleted): published nothing",
            registry=self.registry,
        )
        self.redis_up = Gauge("sse_outbox_redis_up", "1 unless the last send failed", registry=self.registry)
        self.redis_up.set(1)


@dataclass
class Relay:
    """Passes over the outbox: at once after a full batch, every `poll_seconds` when idle, and with a
    backoff from FIRST_ to MAX_BACKOFF_SECONDS while sending fails."""

    metrics: RelayMetrics
    using: str
    batch_size: int
    poll_seconds: float
    stopping: threading.Event = field(default_factory=threading.Event)
    # When the current outage started (monotonic), None while Redis takes what is sent.
    _outage_since: float | None = field(default=None, init=False)
    _backoff: float = field(default=FIRST_BACKOFF_SECONDS, init=False)

    def run(self) -> None:
        """Until `stopping` is set; a pass in progress finishes first."""
        while not self.stopping.is_set():
            self.stopping.wait(self.run_once())

    def run_once(self) -> float:
        """One pass; returns how long to wait before the next."""
        try:
            progress = outbox.send_pending(using=self.using, limit=self.batch_size)
            pending = self._update_backlog()
        except DatabaseError:
            logger.exception("the outbox's database failed; retrying")
            # Reconnect on the next pass: the database may have restarted under the connection.
            connections[self.using].close()
            return self._next_backoff()
        self.metrics.sent.inc(progress.sent)
        self.metrics.duplicates.inc(progress.duplicates)
        if progress.error is not None:
            self.metrics.retried.inc()
            self._outage(str(progress.error), pending)
            return self._next_backoff()
        self._backoff = FIRST_BACKOFF_SECONDS
        if progress.handled:
            self._recovered()
        return 0.0 if progress.handled >= self.batch_size else self.poll_seconds

    def _update_backlog(self) -> int:
        found = outbox.backlog(using=self.using)
        self.metrics.pending.set(found.pending)
        self.metrics.oldest_age.set(found.oldest_age_seconds)
        return found.pending

    def _outage(self, reason: str, pending: int) -> None:
        self.metrics.redis_up.set(0)
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "Redis did not take the outbox's events; retrying with backoff (%d pending): %s",
                pending,
                reason,
            )

    def _recovered(self) -> None:
        self.metrics.redis_up.set(1)
        if self._outage_since is not None:
            logger.warning(
                "Redis takes the outbox's events again, after %.1f s", time.monotonic() - self._outage_since
            )
            self._outage_since = None

    def _next_backoff(self) -> float:
        wait, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        return wait
