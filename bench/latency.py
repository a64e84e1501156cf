"""A fixed-size latency histogram: every event is counted, and memory does not grow with the run."""

from __future__ import annotations

from typing import Any

# 0.1 ms bins below 100 ms (bins 0-999), then 1 ms bins up to 60 s; the last bin holds the rest.
FINE_BINS = 1000
LAST_BIN = FINE_BINS + 60_000 - 100


def bin_of(latency_ns: int) -> int:
    us = latency_ns // 1000
    if us < 100_000:
        return max(0, us // 100)
    return min(FINE_BINS - 100 + us // 1000, LAST_BIN)


def upper_ms(index: int) -> float:
    """The top of a bin: reported percentiles err on the slow side, by at most one bin."""
    if index < FINE_BINS:
        return (index + 1) / 10
    return float(index - FINE_BINS + 101)


class Histogram:
    """Filled by the client's hot loop, which indexes `bins` with `bin_of` and raises `max_ns` itself."""

    __slots__ = ("bins", "max_ns")

    def __init__(self) -> None:
        self.bins = [0] * (LAST_BIN + 1)
        self.max_ns = 0

    @property
    def count(self) -> int:
        return sum(self.bins)

    def percentile_ms(self, q: float) -> float | None:
        count = self.count
        if not count:
            return None
        rank = max(1, round(q * count))
        seen = 0
        for index, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return upper_ms(index)
        return upper_ms(LAST_BIN)

    def summary(self) -> dict[str, Any]:
        count = self.count
        return {
            "lat_samples": count,
            "lat_p50_ms": self.percentile_ms(0.50),
            "lat_p90_ms": self.percentile_ms(0.90),
            "lat_p99_ms": self.percentile_ms(0.99),
            "lat_p999_ms": self.percentile_ms(0.999),
            "lat_max_ms": round(self.max_ns / 1e6, 2) if count else None,
        }
