"""The scenarios and their targets, as data; `--quick` scales them down for smoke runs,
`--replicas` runs them on several SSE processes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Kind = Literal["publish", "idle", "connect"]


@dataclass(frozen=True)
class Target:
    """Pass/fail thresholds; a threshold left as None is not part of the scenario's target."""

    min_delivered_pct: float | None = None
    max_p99_ms: float | None = None
    max_lost: int | None = None
    max_kb_per_conn: float | None = None
    max_connect_s: float | None = None
    # Flood: the growth of service + nginx memory under load stays within the per-connection cap.
    max_peak_kb_per_conn: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_delivered_pct is not None:
            parts.append(f">={self.min_delivered_pct:g}%")
        if self.max_p99_ms is not None:
            parts.append(f"p99<={self.max_p99_ms:g}ms")
        if self.max_lost is not None:
            parts.append(f"lost<={self.max_lost}")
        if self.max_kb_per_conn is not None:
            parts.append(f"<={self.max_kb_per_conn:g}KB/conn")
        if self.max_connect_s is not None:
            parts.append(f"connect<={self.max_connect_s:g}s")
        if self.max_peak_kb_per_conn is not None:
            parts.append(f"peak<={self.max_peak_kb_per_conn:g}KB/conn")
        return " ".join(parts)

    def misses(self, result: dict[str, Any]) -> list[str]:
        """What the result misses, e.g. `p99 212.3 > 75`; empty when the target is met."""
        checks = [
            ("delivered %", result.get("delivered_pct"), self.min_delivered_pct, False),
            ("p99 ms", result.get("lat_p99_ms"), self.max_p99_ms, True),
            ("lost", result.get("lost"), self.max_lost, True),
            ("KB/conn", result.get("rss_per_conn_kb"), self.max_kb_per_conn, True),
            ("connect s", result.get("connect_s"), self.max_connect_s, True),
            ("peak KB/conn", result.get("rss_peak_per_conn_kb"), self.max_peak_kb_per_conn, True),
        ]
        missed = []
        for name, value, limit, is_max in checks:
            if limit is None:
                continue
            if value is None:
                missed.append(f"{name} not measured")
            elif (value > limit) if is_max else (value < limit):
                missed.append(f"{name} {value:g} {'>' if is_max else '<'} {limit:g}")
        return missed


@dataclass(frozen=True)
class Scenario:
    # The name on one SSE process; `name` adds the replica count to it for more.
    base_name: str
    kind: Kind
    per_channel: int
    target: Target
    channels: int = 1
    # Messages per second over all channels; 0 = back to back, as fast as the publish path goes.
    rate: float = 0.0
    duration: float = 10.0
    hold: float = 5.0
    drain: float = 15.0
    # Clients cut off by the server reconnect with Last-Event-ID, as browsers do.
    reconnect: bool = True
    # SSE service processes behind the one nginx, sharing the one Redis.
    replicas: int = 1
    # The project without nginx: clients connect to the one SSE process itself. (The peer has no
    # process apart from its nginx, so it runs the scenario as any other.)
    direct: bool = False
    # SSE_* settings of the project's service for this scenario (the peers have none to set).
    sse_env: tuple[tuple[str, str], ...] = ()
    # Run in every pair of `make bench`'s alternating runs, not only the first.
    paired: bool = False

    @property
    def name(self) -> str:
        return self.base_name if self.replicas == 1 else f"{self.base_name}-{self.replicas}rep"

    @property
    def clients(self) -> int:
        return self.per_channel * self.channels

    @property
    def time_limit(self) -> float:
        """Hard cap: connect and warm-up (90 s at worst), the run itself, and the drain."""
        return 90 + (self.duration + self.drain if self.kind == "publish" else self.hold) + 30

    def quick(self) -> Scenario:
        """Ten times fewer clients and 2-second runs: checks the whole path, measures little."""
        return replace(
            self,
            per_channel=max(1, self.per_channel // 10),
            duration=min(self.duration, 2.0),
            hold=min(self.hold, 2.0),
            drain=min(self.drain, 10.0),
        )

    def with_replicas(self, replicas: int) -> Scenario:
        return replace(self, replicas=replicas)

    def with_clients(self, clients: int) -> Scenario:
        """At most `clients` streams, spread over the same channels."""
        return replace(self, per_channel=max(1, clients // self.channels))

    @property
    def has_peer(self) -> bool:
        """Whether the peers run it too: it has no replicas to spread over, nor project settings."""
        return self.replicas == 1 and not self.sse_env


# Backlog cap per connection (SSE_SEND_BUFFER_BYTES, 1 MiB) plus socket and proxy buffers.
_FLOOD_PEAK_KB = 1024 + 256

_FANOUT_1K = Scenario(
    "fanout-1k",
    "publish",
    1000,
    Target(min_delivered_pct=98, max_p99_ms=75, max_lost=0),
    rate=100,
    duration=6.0,
    paired=True,
)


def _delayed(ms: int, paired: bool = False) -> Scenario:
    """fanout-1k on the project with SSE_WRITE_DELAY_MS: compared with the peers' fanout-1k."""
    return replace(
        _FANOUT_1K,
        base_name=f"fanout-1k-delay{ms}",
        sse_env=(("SSE_WRITE_DELAY_MS", str(ms)),),
        target=replace(_FANOUT_1K.target, max_p99_ms=75 + ms),
        paired=paired,
    )


SCENARIOS = [
    _FANOUT_1K,
    _delayed(20, paired=True),
    _delayed(10),
    _delayed(50),
    # The same load on two SSE processes, the row next to it: what a second replica buys on one machine.
    replace(_FANOUT_1K.with_replicas(2), paired=False),
    Scenario(
        "fanout-5k",
        "publish",
        5000,
        Target(min_delivered_pct=95, max_p99_ms=300, max_lost=0),
        rate=20,
        duration=6.0,
        paired=True,
    ),
    # Twice what nginx + nchan spends per stream (14 KB), service and nginx together.
    Scenario("idle-5k", "idle", 5000, Target(max_kb_per_conn=28), hold=3.0, paired=True),
    # One SSE process holding 20,000 streams: through the template's nginx they would need 40,000
    # connections, more than its 2 x 16,384, so the clients connect to the process itself.
    Scenario("idle-20k", "idle", 20_000, Target(), hold=5.0, direct=True),
    Scenario("connect-5k", "connect", 5000, Target(max_connect_s=1.5), hold=1.0, paired=True),
    Scenario(
        "flood-1k",
        "publish",
        1000,
        Target(max_lost=0, max_peak_kb_per_conn=_FLOOD_PEAK_KB),
        rate=0,
        duration=5,
        drain=20,
    ),
    Scenario(
        "channels-100x50",
        "publish",
        50,
        Target(min_delivered_pct=98, max_p99_ms=100),
        channels=100,
        rate=1000,
        duration=6.0,
        paired=True,
    ),
]


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)
