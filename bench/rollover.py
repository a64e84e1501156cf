"""A rolling deploy, measured: one of two replicas behind nginx gets SIGTERM while it holds streams.

`python -m bench rollover` runs it twice on the same shape, with the paced drain (`SSE_DRAIN_SECONDS`)
and with the setting at 0 (every stream ended at once), and prints the two side by side. The test
suite runs the same `roll` with a few hundred streams (tests/integration/test_drain.py): one helper
for both.

The clients are the load client's listeners acting as EventSources: each waits the `retry:` the
server last sent before it reconnects, and resumes from its Last-Event-ID, so what a browser would
lose or see twice is counted. Publishing runs all along; what the rolled replica's clients miss
while they move must come back from the stream.

What is reported: events lost and duplicated; the reconnects per second after the signal (the
busiest second's share of them all: a storm puts them all in one); the time each client was without
a stream (cut to reopened) and how long reopening took (attempt to ready), p50/p99; the surviving
replica's CPU, peak over 0.5 s samples; publish-to-receive latency of the events over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import payload
from .control import Child, load
from .fdlimit import streams_allowed
from .procstat import cpu_seconds
from .servers import Servers
from .system import started_pid

# Samples of the survivor's CPU are taken this often; the peak is over one sample.
CPU_SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class Plan:
    """The shape of one rollover."""

    streams: int = 2000
    channels: int = 20
    # Messages per second over all channels, published from before the signal until after the drain.
    rate: float = 20.0
    drain_seconds: float = 10.0
    retry_ms: int = 3000
    # How long a farewell may take (SSE_SHUTDOWN_GRACE_SECONDS).
    grace_seconds: float = 5.0
    connect_timeout: float = 30.0

    @property
    def publish_seconds(self) -> float:
        """Long enough to publish through the drain and the slowest jittered reconnect."""
        return 2.0 + self.drain_seconds + 1.5 * self.retry_ms / 1000 + 3.0


async def roll(run_dir: Path, plan: Plan) -> dict[str, Any]:
    """Starts Redis, two replicas and nginx, connects `plan.streams` clients, rolls the first replica
    and returns the figures (module docstring)."""
    env = {
        "SSE_DRAIN_SECONDS": str(plan.drain_seconds),
        "SSE_RETRY_MS": str(plan.retry_ms),
        "SSE_SHUTDOWN_GRACE_SECONDS": str(plan.grace_seconds),
    }
    servers = Servers(run_dir, sse_env=env, unix_upstream=True, replicas=2).start()
    channels = payload.channel_names(plan.channels)
    try:
        async with load(
            servers,
            channels,
            run_dir,
            per_channel=math.ceil(plan.streams / plan.channels),
            connect_concurrency=256,
            connect_timeout=plan.connect_timeout,
            reconnect=True,
            reconnect_delay=0.25,
            honour_retry=True,
        ) as (client, publisher):
            return await _measure(servers, plan, client, publisher)
    finally:
        servers.stop()


async def _measure(servers: Servers, plan: Plan, client: Child, publisher: Child) -> dict[str, Any]:
    result: dict[str, Any] = {"plan": asdict(plan)}
    result.update(await client.ask({"cmd": "connect"}, plan.connect_timeout * 2 + 30))
    started = time.monotonic()
    while (await client.ask({"cmd": "status"}, 10))["warm_missing"] and time.monotonic() - started < 30:
        await publisher.ask({"cmd": "warm"}, 10)
        await asyncio.sleep(0.25)
    await client.ask({"cmd": "quiesce", "quiet_s": 0.5, "max_s": 10}, 15)
    result["alive_at_start"] = (await client.ask({"cmd": "reset"}, 10))["alive"]
    result["streams_by_replica"] = servers.streams()

    rolled, survivor = servers.sse_services
    assert rolled.process is not None
    publishing = asyncio.create_task(
        publisher.ask(
            {"cmd": "run", "rate": plan.rate, "duration": plan.publish_seconds}, 60 + plan.publish_seconds
        )
    )
    await asyncio.sleep(1.0)
    cpu = _CpuPeak(started_pid(survivor.process))
    sampling = asyncio.create_task(cpu.sample())
    signalled = time.time()
    rolled.process.signal(signal.SIGTERM)
    exit_budget = plan.drain_seconds + plan.grace_seconds + 20
    try:
        await asyncio.to_thread(rolled.process.popen.wait, exit_budget)
    except subprocess.TimeoutExpired:
        result["rolled_exit"] = f"still running {exit_budget:.0f}s after SIGTERM"
    result["rolled_exit_s"] = round(time.time() - signalled, 2)
    published = await publishing
    sampling.cancel()
    result["survivor_cpu_peak_pct"] = cpu.peak
    result["published_total"] = published["published_total"]
    drained = await client.ask(
        {"cmd": "drain", "published": published["published"], "max_s": 30, "quiet_s": 3}, 60
    )
    kept = ("expected", "delivered", "lost", "duplicates", "cutoffs", "reconnects", "alive_at_end")
    for key in (*kept, "lat_p50_ms", "lat_p99_ms", "lat_max_ms"):
        result[key] = drained[key]
    log = (await client.ask({"cmd": "reconnects"}, 10))["reconnects"]
    result.update(_spread(log, signalled))
    return result


class _CpuPeak:
    """The busiest `CPU_SAMPLE_SECONDS` of one process, in % of one core."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0.0

    async def sample(self) -> None:
        before, at = cpu_seconds([self._pid]), time.monotonic()
        while True:
            await asyncio.sleep(CPU_SAMPLE_SECONDS)
            now, used = time.monotonic(), cpu_seconds([self._pid])
            self.peak = max(self.peak, round(100 * (used - before) / (now - at), 1))
            before, at = used, now


def _spread(log: list[list[float]], signalled: float) -> dict[str, Any]:
    """Reconnects per whole second after the signal, and the percentiles of their delays."""
    if not log:
        return {"reconnects_logged": 0}
    per_second = Counter(int(max(0.0, attempted - signalled)) for attempted, _, _ in log)
    away = sorted(entry[1] for entry in log)
    reopening = sorted(entry[2] for entry in log)
    return {
        "reconnects_logged": len(log),
        "reconnects_per_second": [per_second.get(s, 0) for s in range(max(per_second) + 1)],
        "busiest_second_share": round(max(per_second.values()) / len(log), 3),
        "away_p50_s": _percentile(away, 0.50),
        "away_p99_s": _percentile(away, 0.99),
        "reconnect_p50_s": _percentile(reopening, 0.50),
        "reconnect_p99_s": _percentile(reopening, 0.99),
    }


def _percentile(ordered: list[float], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rollover", description=__doc__)
    defaults = Plan()
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--drain-seconds", type=float, default=defaults.drain_seconds)
    parser.add_argument("--retry-ms", type=int, default=defaults.retry_ms)
    parser.add_argument("--rate", type=float, default=defaults.rate)
    args = parser.parse_args(argv)
    streams = streams_allowed(args.streams)
    plan = Plan(streams=streams, drain_seconds=args.drain_seconds, retry_ms=args.retry_ms, rate=args.rate)
    results = {}
    for name, shape in (("paced", plan), ("at once", Plan(**{**asdict(plan), "drain_seconds": 0.0}))):
        print(f"bench: rollover {name}, {shape.streams} streams...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-rollover-") as run_dir:
            results[name] = asyncio.run(roll(Path(run_dir), shape))
    print(_table(results))
    print(json.dumps(results))
    failed = [name for name, r in results.items() if r.get("lost") or r.get("duplicates")]
    return 1 if failed else 0


_ROWS = (
    ("streams (rolled / survivor)", lambda r: "/".join(str(v) for v in r["streams_by_replica"].values())),
    ("drain window s", lambda r: r["plan"]["drain_seconds"]),
    ("rolled replica exited after s", lambda r: r["rolled_exit_s"]),
    ("reconnects", lambda r: r["reconnects_logged"]),
    ("busiest second's share", lambda r: r.get("busiest_second_share")),
    ("reconnects per second", lambda r: r.get("reconnects_per_second")),
    ("reconnect p50 / p99 s", lambda r: f"{r.get('reconnect_p50_s')} / {r.get('reconnect_p99_s')}"),
    ("without a stream p50 / p99 s", lambda r: f"{r.get('away_p50_s')} / {r.get('away_p99_s')}"),
    ("survivor peak CPU %", lambda r: r["survivor_cpu_peak_pct"]),
    (
        "event latency p50 / p99 / max ms",
        lambda r: f"{r['lat_p50_ms']} / {r['lat_p99_ms']} / {r['lat_max_ms']}",
    ),
    ("events expected", lambda r: r["expected"]),
    ("lost / duplicated", lambda r: f"{r['lost']} / {r['duplicates']}"),
)


def _table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    lines = [f"{'':32}" + "".join(f"{name:>24}" for name in names)]
    for label, value in _ROWS:
        lines.append(f"{label:32}" + "".join(f"{value(results[n])!s:>24}" for n in names))
    return "\n".join(lines)
