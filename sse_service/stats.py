"""What the hub counts for operators (`metrics` reads it when scraped)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import Histogram

from .ending import End

# Publish-to-send latency buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class HubStats:
    """Counters for operators, read by `metrics` when scraped; plain ints keep the hot path cheap."""

    connections: int = 0
    messages_received: int = 0
    events_delivered: int = 0
    bytes_sent: int = 0
    messages_rejected: int = 0
    duplicates_dropped: int = 0
    slow_consumers_cut: int = 0
    redis_reconnects: int = 0
    gaps_filled: int = 0
    channels_asked_again: int = 0
    # Streams refused for want of room for their channels, by why (`limits.RoomRefusal`).
    streams_refused: Counter[str] = field(default_factory=Counter)
    # Streams ended, by why.
    ended: dict[End, int] = field(default_factory=lambda: dict.fromkeys(End, 0))


def latency_histogram() -> Histogram:
    return Histogram(
        "sse_publish_to_send_seconds",
        "From publish (Redis's clock) to the hub writing the event to its clients.",
        buckets=LATENCY_BUCKETS,
        registry=None,
    )
