"""The one table `make bench` prints, and the raw results as JSON lines next to it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git": _git_revision(),
    }


def _git_revision() -> str:
    """The commit measured, `+dirty` when the working tree differs from it."""
    here = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5)
        except OSError:
            return ""
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD")
    return revision + ("+dirty" if revision and git("status", "--porcelain", "--untracked-files=no") else "")


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def _cpu(result: Result, name: str) -> str:
    # The phase that matters: publishing for publish scenarios, connecting for connect-5k.
    phase = "cpu_connect_pct" if result["kind"] == "connect" else "cpu_run_pct"
    return _num((result.get(phase) or {}).get(name))


def _delivered(result: Result) -> str:
    if result.get("delivered_per_s") is None:
        return "-"
    return f"{result['delivered_per_s']:,} ({result.get('delivered_pct', 0):.1f}%)"


def _verdict(result: Result) -> str:
    if "error" in result:
        return "ERROR " + str(result["error"])[:60]
    return "pass" if result["passed"] else "FAIL " + "; ".join(result["misses"])


COLUMNS: Sequence[tuple[str, str, Callable[[Result], str]]] = (
    ("system", "<", lambda r: r.get("system", "project")),
    ("scenario", "<", lambda r: r["scenario"]),
    ("clients", ">", lambda r: _num(r.get("alive_at_start", r["clients"]))),
    ("offered/s", ">", lambda r: _num(r.get("offered_per_s"))),
    ("delivered/s (%)", ">", _delivered),
    ("p50 ms", ">", lambda r: _num(r.get("lat_p50_ms"), 1)),
    ("p99 ms", ">", lambda r: _num(r.get("lat_p99_ms"), 1)),
    ("max ms", ">", lambda r: _num(r.get("lat_max_ms"), 1)),
    ("lost", ">", lambda r: _num(r.get("lost"))),
    ("cut", ">", lambda r: _num(r.get("cutoffs"))),
    ("KB/conn", ">", lambda r: _num(r.get("rss_per_conn_kb"), 1)),
    ("µs/event", ">", lambda r: _num(r.get("server_cpu_us_per_event"), 1)),
    ("cpu% svc", ">", lambda r: _cpu(r, "service")),
    ("nginx", ">", lambda r: _cpu(r, "nginx")),
    ("redis", ">", lambda r: _cpu(r, "redis")),
    ("client", ">", lambda r: _cpu(r, "client")),
    ("other", ">", lambda r: _cpu(r, "other")),
    ("connect s", ">", lambda r: _num(r.get("connect_s"), 2)),
    ("vs target", "<", _verdict),
)


# Under the table when a row ran on several SSE processes (`--replicas`, fanout-1k-2rep).
REPLICAS_NOTE = (
    "NAME-Nrep = the scenario on N SSE processes behind the one nginx and Redis; cpu% svc and KB/conn",
    "count all of them.",
)


def table(results: Sequence[Result], info: dict[str, Any]) -> str:
    rows = [[cell(r) for _, _, cell in COLUMNS] for r in results]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, (name, _, _) in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:{align}{w}}" for c, (_, align, _), w in zip(cells, COLUMNS, widths, strict=True)
        ).rstrip()

    via = (
        "the project direct to the service (no nginx)" if info.get("direct") else "the project through nginx"
    )
    if not info.get("direct") and info.get("upstream"):
        via += f" (upstream over {'a Unix socket' if info['upstream'] == 'unix' else 'TCP'})"
    if "nchan" in info.get("systems", ()):
        via += ", beside nginx + nchan"
    out = [
        f"Fan-out benchmark, {via}, loopback; {info['cpus']} vCPU {info['cpu_model']}, "
        f"Python {info['python']}, git {info['git'] or '-'}"
        + (" (QUICK: scaled down)" if info.get("quick") else ""),
        line([name for name, _, _ in COLUMNS]),
        line(["-" * w for w in widths]),
        *(line(row) for row in rows),
        "",
        "cpu% is of one core over the publish window (connect-5k: while connecting; idle-5k: while idle);",
        "other = busy CPU of the machine none of the benchmark's processes accounts for (kernel, noise).",
        "cut = streams the server ended mid-run (the client reconnects with Last-Event-ID; a cut-off counts",
        "as delivered only if the missed events arrive). KB/conn = server RSS growth per stream, µs/event =",
        "server CPU per delivered event; the server is the service + nginx (project) or nginx (nchan).",
        *(REPLICAS_NOTE if any(r.get("replicas", 1) > 1 for r in results) else []),
        *(f"{r['scenario']} on {r['system']}: {r['fd_limited']}" for r in results if "fd_limited" in r),
        *_targets(results),
    ]
    noisy = list(dict.fromkeys(r["scenario"] for r in results if _busy_elsewhere(r) > NOISY_PCT))
    if noisy:
        out.append(
            f"WARNING: other processes took more than {NOISY_PCT}% of a core during {', '.join(noisy)}; "
            "on 2 vCPUs that moves latency a lot: rerun those on a quiet machine."
        )
    return "\n".join(out)


NOISY_PCT = 20


def _targets(results: Sequence[Result]) -> list[str]:
    targets = dict.fromkeys(f"{r['scenario']} {r['target']}" for r in results if r["target"])
    return ["targets: " + "; ".join(targets)] if targets else []


def _busy_elsewhere(result: Result) -> float:
    phase = "cpu_connect_pct" if result.get("kind") == "connect" else "cpu_run_pct"
    return float((result.get(phase) or {}).get("other", 0.0))


def profiles(results: Sequence[Result], limit: int = 12) -> str:
    """Top functions by self time for every process sampled with --profile."""
    out = []
    for result in results:
        for name, sampled in (result.get("profile") or {}).items():
            out.append(f"\n{result['scenario']}: {name}, top self time (py-spy, {sampled['stacks']})")
            out += [f"  {pct:5.1f}%  {frame}" for frame, pct in sampled["top_self_pct"][:limit]]
    return "\n".join(out)


def write_jsonl(path: Path, info: dict[str, Any], results: Sequence[Result]) -> Path:
    with open(path, "w") as f:
        f.write(json.dumps({"type": "run", **info}) + "\n")
        for result in results:
            f.write(json.dumps({"type": "scenario", **result}) + "\n")
    return path
