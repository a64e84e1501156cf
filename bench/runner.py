"""One scenario, start to finish: fresh servers, the client and publisher processes, the phases.

Phases, each bounded: connect -> warm-up (publish until every stream has had an event) -> quiesce ->
memory snapshot -> reset counters -> run (publish, or hold idle) -> drain -> results. The system is the
project or its peer, nginx + nchan (`System`); what counts as its server is its `memory_groups`
(service + nginx, or nchan's nginx). Memory per connection is their RSS growth over their own baseline
before any client; `service` is all the SSE processes of a scenario on several replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.processes import StartError

from . import payload, profile
from .control import Child, ChildError, load
from .eventstream_peer import EventstreamServers
from .fdlimit import LimitError, streams_allowed
from .nchan import NchanServers
from .procstat import (
    context_switches,
    cpu_seconds,
    machine_busy_seconds,
    machine_irq_seconds,
    rss_kb,
    write_syscalls,
)
from .scenarios import Scenario
from .servers import Servers
from .system import System

Result = dict[str, Any]
SYSTEMS = ("project", "nchan", "django-eventstream")


@dataclass(frozen=True)
class Options:
    run_root: Path
    direct: bool = False
    sse_env: dict[str, str] = field(default_factory=dict)
    unix_upstream: bool = False
    connect_concurrency: int = 256
    connect_timeout: float = 30.0
    reconnect_delay: float = 0.25
    warmup_timeout: float = 20.0
    settle_s: float = 1.0
    # Process groups to sample with py-spy during the run, and where their stacks go.
    profile: tuple[str, ...] = ()
    profile_prefix: Path | None = None
    profile_native: bool = False


class CpuWindow:
    """CPU % of each process group between construction and `stop` (200 % = both of 2 cores)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._start = {name: cpu_seconds(pids) for name, pids in groups.items()}
        self._start_sys = {name: cpu_seconds(pids, system_only=True) for name, pids in groups.items()}
        self._start_counts = {name: self._counts(pids) for name, pids in groups.items() if ":" not in name}
        self._machine = machine_busy_seconds()
        self._irq = machine_irq_seconds()
        self._t0 = time.monotonic()
        self.wall_s = 0.0
        # Per group: write syscalls and context switches over the window.
        self.counts: dict[str, dict[str, int]] = {}

    @staticmethod
    def _counts(pids: list[int]) -> tuple[int, int]:
        return write_syscalls(pids), context_switches(pids)

    def stop(self) -> dict[str, float]:
        """Per group, plus `other`: the machine's busy time none of ours accounts for (noise, and
        `other:softirq`, the kernel's packet processing, much of it for our own loopback traffic).

        `<group>:sys` is the kernel's part of a group's time; names with a colon are details that
        the total and `other` do not count twice.
        """
        wall = self.wall_s = max(1e-6, time.monotonic() - self._t0)
        used = {name: (cpu_seconds(pids) - self._start[name]) for name, pids in self._groups.items()}
        busy = machine_busy_seconds() - self._machine
        ours = sum(seconds for name, seconds in used.items() if ":" not in name)
        used["other"] = max(0.0, busy - ours)
        used["other:softirq"] = machine_irq_seconds() - self._irq
        for name, pids in self._groups.items():
            if ":" not in name:
                used[f"{name}:sys"] = cpu_seconds(pids, system_only=True) - self._start_sys[name]
                writes, switches = self._counts(pids)
                writes0, switches0 = self._start_counts[name]
                self.counts[name] = {"syscw": writes - writes0, "ctxsw": switches - switches0}
        return {name: round(100 * seconds / wall, 1) for name, seconds in used.items()}


def _rss(groups: dict[str, list[int]], names: Iterable[str]) -> dict[str, int]:
    return {name: rss_kb(groups[name]) for name in names}


async def _peak_rss(
    groups: dict[str, list[int]], names: tuple[str, ...], peak: list[int], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], sum(_rss(groups, names).values()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def drive(scenario: Scenario, servers: System, options: Options, result: Result) -> None:
    """Fills `result` as it goes, so a scenario stopped by its time limit still reports what it saw."""
    options_for_client = {
        "per_channel": scenario.per_channel,
        "connect_concurrency": options.connect_concurrency,
        "connect_timeout": options.connect_timeout,
        "reconnect": scenario.reconnect,
        "reconnect_delay": options.reconnect_delay,
    }
    channels = payload.channel_names(scenario.channels)
    async with load(servers, channels, servers.run_dir, **options_for_client) as (client, publisher):
        await _phases(scenario, servers, options, result, client, publisher)


async def _phases(
    scenario: Scenario, servers: System, options: Options, result: Result, client: Child, publisher: Child
) -> None:
    server = servers.memory_groups
    groups = servers.pids()
    groups["client"] = [client.pid]
    groups["publisher"] = [publisher.pid]
    base = _rss(groups, server)
    result["rss_base_kb"] = base

    window = CpuWindow(groups)
    # connect-5k is about connecting, so that is the phase to profile; the others profile the run.
    profilers = (
        await _start_profiles(scenario, servers.name, options, groups) if scenario.kind == "connect" else []
    )
    result.update(await client.ask({"cmd": "connect"}, options.connect_timeout * 2 + 30))
    result["cpu_connect_pct"] = window.stop()
    await _finish_profiles(profilers, result)

    started = time.monotonic()
    published = 0
    while True:
        await publisher.ask({"cmd": "warm"}, 10)
        published += 1
        await asyncio.sleep(0.25 if published < 4 else 1.0)
        status = await client.ask({"cmd": "status"}, 10)
        if not status["warm_missing"] or time.monotonic() - started > options.warmup_timeout:
            break
    result["warmup_s"] = round(time.monotonic() - started, 2)
    result["warmup_missing"] = status["warm_missing"]
    await client.ask({"cmd": "quiesce", "quiet_s": 0.5, "max_s": 10}, 15)
    await asyncio.sleep(options.settle_s)

    if "nginx" in groups:
        groups["nginx"] = servers.pids()["nginx"]
        # Each nginx process on its own too (in the JSON only): one busy worker is a bottleneck
        # that the sum hides.
        groups.update({f"nginx:{pid}": [pid] for pid in groups["nginx"]})
    connected = _rss(groups, server)
    alive = (await client.ask({"cmd": "reset"}, 10))["alive"]
    result["alive_at_start"] = alive
    result["streams_by_replica"] = servers.streams()
    result["rss_connected_kb"] = connected
    if alive:
        grown = {name: connected[name] - base[name] for name in server}
        result["rss_per_conn_kb"] = round(sum(grown.values()) / alive, 2)
        result["rss_per_conn_kb_by_process"] = {name: round(kb / alive, 2) for name, kb in grown.items()}

    peak = [sum(connected.values())]
    stop_peak = asyncio.Event()
    sampler = asyncio.create_task(_peak_rss(groups, server, peak, stop_peak))
    window = CpuWindow(groups)
    profilers = (
        await _start_profiles(scenario, servers.name, options, groups) if scenario.kind != "connect" else []
    )
    try:
        if scenario.kind == "publish":
            await _publish(scenario, result, client, publisher)
        else:
            await asyncio.sleep(scenario.hold)
            result.update(await client.ask({"cmd": "status"}, 10))
    finally:
        result["cpu_run_pct"] = window.stop()
        result["cpu_run_wall_s"] = round(window.wall_s, 3)
        result["run_counts"] = window.counts
        stop_peak.set()
        await sampler
    await _finish_profiles(profilers, result)
    _server_cpu_per_event(result, server)
    result["rss_peak_kb"] = peak[0]
    if alive:
        result["rss_peak_per_conn_kb"] = round((peak[0] - sum(base.values())) / alive, 2)
    log = servers.service_log()
    result["service_slow_consumer_cutoffs"] = log.count("slow consumer on")
    result["service_redis_reconnects"] = log.count("redis subscription lost")


async def _start_profiles(
    scenario: Scenario, system: str, options: Options, groups: dict[str, list[int]]
) -> list[tuple[str, Path, asyncio.subprocess.Process]]:
    started = []
    # py-spy leaves idle samples out, so a window longer than the phase only costs time.
    seconds = {"publish": scenario.duration, "idle": scenario.hold, "connect": 6.0}[scenario.kind]
    # nchan has no `service` group: only what the system runs is sampled.
    for name in (name for name in options.profile if groups.get(name)):
        # The first process of the group: with several replicas, the first SSE service.
        out = Path(f"{options.profile_prefix}-{scenario.name}-{system}-{name}.collapsed")
        process = await profile.record(groups[name][0], seconds, out, options.profile_native)
        if process is None:
            raise ChildError("--profile needs py-spy: pip install py-spy")
        started.append((name, out, process))
    return started


async def _finish_profiles(
    profilers: list[tuple[str, Path, asyncio.subprocess.Process]], result: Result
) -> None:
    for name, out, process in profilers:
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            continue
        if out.exists():
            result.setdefault("profile", {})[name] = {
                "stacks": str(out),
                "top_self_pct": profile.top_self(out),
            }


async def _publish(scenario: Scenario, result: Result, client: Child, publisher: Child) -> None:
    run = await publisher.ask(
        {"cmd": "run", "rate": scenario.rate, "duration": scenario.duration}, scenario.duration + 30
    )
    result.update({k: v for k, v in run.items() if k != "published"})
    drained = await client.ask(
        {"cmd": "drain", "published": run["published"], "max_s": scenario.drain, "quiet_s": 3.0},
        scenario.drain + 15,
    )
    result.update(drained)
    pub_s = max(1e-9, run["pub_s"])
    result["offered_per_s"] = round(drained["expected"] / pub_s)
    result["pub_msgs_per_s"] = round(run["published_total"] / pub_s, 1)
    # Over the publish window, or until the last delivery if that came later: a hub that falls
    # behind shows as a longer span, never as more than 100 % of what was offered.
    span = max(pub_s, (drained["last_rx_ns"] - run["t_first_ns"]) / 1e9)
    if drained["delivered"] and span > 0:
        result["delivered_per_s"] = round(drained["delivered"] / span)
        result["delivered_pct"] = round(100 * result["delivered_per_s"] / max(1, result["offered_per_s"]), 1)
    else:
        result["delivered_per_s"] = 0
        result["delivered_pct"] = 0.0


def _server_cpu_per_event(result: Result, server: tuple[str, ...]) -> None:
    """The server's CPU time per delivered event, in microseconds: what a delivery costs."""
    delivered = result.get("delivered")
    if not delivered:
        return
    pct = sum(result["cpu_run_pct"].get(name, 0.0) for name in server)
    result["server_cpu_us_per_event"] = round(pct / 100 * result["cpu_run_wall_s"] / delivered * 1e6, 2)
    counts = result.get("run_counts", {})
    for key in ("syscw", "ctxsw"):
        total = sum(counts.get(name, {}).get(key, 0) for name in server)
        # None for a server that writes with send() (daphne's Twisted), which syscw does not count.
        result[f"server_{key}_per_event"] = round(total / delivered, 3) if total else None


def system_for(name: str, scenario: Scenario, options: Options, pair: int = 1) -> System:
    """Fresh, not started: the project as the options and scenario ask, or a peer."""
    run_dir = options.run_root / f"{scenario.name}-{name}-{pair}"
    if name == "nchan":
        return NchanServers(run_dir)
    if name == "django-eventstream":
        return EventstreamServers(run_dir)
    direct = options.direct or scenario.direct
    return Servers(
        run_dir,
        direct=direct,
        sse_env={**options.sse_env, **dict(scenario.sse_env)},
        unix_upstream=options.unix_upstream,
        replicas=scenario.replicas,
    )


def run_scenario(scenario: Scenario, system: str, options: Options, budget_s: float, pair: int = 1) -> Result:
    """Runs `scenario` against `system` (the project or a peer) on fresh servers within min(its own
    time limit, `budget_s`), as run `pair` of the alternating pairs; never raises."""
    servers = system_for(system, scenario, options, pair)
    direct = isinstance(servers, Servers) and servers.direct
    result: Result = {
        "system": system,
        "scenario": scenario.name,
        "pair": pair,
        "kind": scenario.kind,
        "clients": scenario.clients,
        "channels": scenario.channels,
        "rate": scenario.rate,
        "duration": scenario.duration if scenario.kind == "publish" else scenario.hold,
        "via": "direct" if direct else "nginx",
        "replicas": scenario.replicas,
        "target": scenario.target.describe(),
    }
    limit = max(1.0, min(scenario.time_limit, budget_s))
    started = time.monotonic()
    try:
        allowed = streams_allowed(scenario.clients)
        if allowed < scenario.clients:
            result["fd_limited"] = f"{allowed} of {scenario.clients} streams, as the descriptor limit allows"
            scenario = scenario.with_clients(allowed)
            result["clients"] = scenario.clients
        servers.start()
        asyncio.run(asyncio.wait_for(drive(scenario, servers, options, result), limit))
    except TimeoutError:
        result["error"] = f"stopped at its time limit of {limit:.0f}s"
    except (StartError, ChildError, LimitError, OSError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        servers.stop()
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    misses = scenario.target.misses(result)
    result["misses"] = misses
    result["passed"] = not misses and "error" not in result
    return result
