"""The figures compared with the peers, and the table of ratios: project / nchan, and project /
django-eventstream.

Each figure is one number of one scenario's result for each system; a ratio is project / peer, so
below 1 is better for latency, memory, time and CPU, and above 1 better for deliveries. The goals are
how close the project means to be to the C implementation on the same machine. On a shared machine
one run of each says little, so `make bench` runs project and nchan in alternating pairs: each
pair's ratio is taken within the pair, and the table shows the median ratio with its min-max.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]
PEER = "nchan"
PYTHON_PEER = "django-eventstream"


@dataclass(frozen=True)
class Figure:
    label: str
    scenario: str
    key: str
    digits: int = 0
    # The goal, as a bound on the ratio: at most `max_ratio`, at least `min_ratio`.
    max_ratio: float | None = None
    min_ratio: float | None = None
    # A count that must be zero for the project whatever the peer does (flood loss).
    zero: bool = False
    # The project's scenario when it differs from the peers' (the same load with a write delay).
    project_scenario: str | None = None

    def goal(self) -> str:
        if self.zero:
            return "0"
        if self.max_ratio is not None:
            return f"≤ {self.max_ratio:g}x"
        if self.min_ratio is not None:
            return f"≥ {self.min_ratio:g}x"
        return ""

    def verdict(self, project: float | None, ratio: float | None) -> str:
        if self.zero:
            return "" if project is None else ("yes" if project == 0 else "no")
        if ratio is None or (self.max_ratio is None and self.min_ratio is None):
            return ""
        # Judged as printed: a ratio shown as 1.00x meets a goal of 1x, whichever way the third
        # decimal went (deliveries equal to within a tenth of a percent, both sides taking all).
        ratio = round(ratio, 2)
        met = (self.max_ratio is None or ratio <= self.max_ratio) and (
            self.min_ratio is None or ratio >= self.min_ratio
        )
        return "yes" if met else "no"


_DELAY = "with SSE_WRITE_DELAY_MS={}: server CPU per delivery, µs"

FIGURES = (
    Figure("1000 clients x 100 msg/s: deliveries/s", "fanout-1k", "delivered_per_s", min_ratio=1.0),
    Figure("same: p99 latency, ms", "fanout-1k", "lat_p99_ms", 1, max_ratio=2.0),
    Figure("same: server CPU per delivery, µs", "fanout-1k", "server_cpu_us_per_event", 2, max_ratio=1.8),
    Figure("same: server write syscalls per delivery", "fanout-1k", "server_syscw_per_event", 3),
    Figure("same: server context switches per delivery", "fanout-1k", "server_ctxsw_per_event", 3),
    *(
        Figure(
            _DELAY.format(ms),
            "fanout-1k",
            "server_cpu_us_per_event",
            2,
            max_ratio=1.0 if ms == 20 else None,
            project_scenario=f"fanout-1k-delay{ms}",
        )
        for ms in (10, 20, 50)
    ),
    *(
        Figure(
            f"with SSE_WRITE_DELAY_MS={ms}: p99 latency, ms",
            "fanout-1k",
            "lat_p99_ms",
            1,
            project_scenario=f"fanout-1k-delay{ms}",
        )
        for ms in (10, 20, 50)
    ),
    Figure("5000 clients x 20 msg/s: deliveries/s", "fanout-5k", "delivered_per_s", min_ratio=1.0),
    Figure("same: p99 latency, ms", "fanout-5k", "lat_p99_ms", 1, max_ratio=2.0),
    Figure("same: server CPU per delivery, µs", "fanout-5k", "server_cpu_us_per_event", 2),
    Figure("5000 idle streams: server memory per stream, KB", "idle-5k", "rss_per_conn_kb", 1, max_ratio=2.0),
    Figure("time to connect 5000 streams, s", "connect-5k", "connect_s", 2, max_ratio=2.0),
    Figure("flood, 1000 clients, 5 s: lost", "flood-1k", "lost", zero=True),
    # Each publisher goes as fast as its way in takes: the Lua step on Redis, or a POST to nchan.
    Figure("flood: deliveries/s, each publishing as fast as it can", "flood-1k", "delivered_per_s"),
    Figure(
        "100 channels x 50 clients, 1000 msg/s: p99 latency, ms",
        "channels-100x50",
        "lat_p99_ms",
        1,
        max_ratio=3.0,
    ),
    Figure(
        "20,000 idle streams, one SSE process without nginx: memory per stream, KB",
        "idle-20k",
        "rss_per_conn_kb",
        1,
    ),
)

NOTES = (
    "ratio = project / nchan within each pair of runs (project and nchan alternating on this machine,",
    "with the same load client): the median over the pairs, (min-max) when there are several; the",
    "nchan and project columns are medians. vs d-e = project / django-eventstream (daphne, its Redis",
    "backend, no proxy), from the first pair. Server = the SSE service + nginx for the project, nginx",
    "(nchan runs inside it) for nchan, daphne for django-eventstream. Write syscalls (syscw) and",
    "context switches are counted from /proc over the server's processes: they do not move with the",
    "machine's speed (syscw counts write and writev, not send: daphne's Twisted sends, so it has none).",
    "idle-20k: the project's one SSE process alone (the template's nginx cannot hold 40,000",
    "connections), nchan's nginx as usual.",
)


def _values(results: Sequence[Result], system: str, scenario: str, key: str) -> dict[int, float]:
    """The figure per pair of runs (a result without `pair` is pair 1)."""
    values = {}
    for result in results:
        if result.get("system") == system and result["scenario"] == scenario and "error" not in result:
            value = result.get(key)
            if value is not None:
                values.setdefault(int(result.get("pair", 1)), float(value))
    return values


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _median(values: dict[int, float]) -> float | None:
    return statistics.median(values.values()) if values else None


def _ratios(project: dict[int, float], peer: dict[int, float], figure: Figure) -> tuple[float | None, str]:
    """The median of the pairs' ratios, shown with its min-max."""
    pairs = sorted(set(project) & set(peer))
    if not pairs:
        return None, "-"
    if figure.zero and all(project[k] == peer[k] == 0 for k in pairs):
        return None, "="
    if any(peer[k] == 0 for k in pairs):
        return None, "-" if all(project[k] == 0 for k in pairs) else "∞"
    ratios = [project[k] / peer[k] for k in pairs]
    median = statistics.median(ratios)
    shown = f"{median:.2f}x"
    if len(ratios) > 1:
        shown += f" ({min(ratios):.2f}-{max(ratios):.2f})"
    return median, shown


def table(results: Sequence[Result]) -> str:
    """The figures as a Markdown table (it reads as well in a terminal as in the README)."""
    rows = [["figure", PEER, PYTHON_PEER, "project", "ratio", "vs d-e", "goal", "met"]]
    for figure in FIGURES:
        project = _values(results, "project", figure.project_scenario or figure.scenario, figure.key)
        nchan = _values(results, PEER, figure.scenario, figure.key)
        python = _values(results, PYTHON_PEER, figure.scenario, figure.key)
        if not project and not nchan and not python:
            continue
        ratio, shown = _ratios(project, nchan, figure)
        first = min(set(project) & set(python), default=None)
        _, against_python = (
            _ratios({first: project[first]}, {first: python[first]}, figure) if first else (None, "-")
        )
        project_value = _median(project)
        rows.append(
            [
                figure.label,
                _num(_median(nchan), figure.digits),
                _num(_median(python), figure.digits),
                _num(project_value, figure.digits),
                shown,
                against_python,
                figure.goal(),
                figure.verdict(max(project.values()) if figure.zero and project else project_value, ratio),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligns = ["<", ">", ">", ">", ">", ">", "<", "<"]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 1) + (":" if a == ">" else "-") for a, w in zip(aligns, widths, strict=True))
        + "|"
    )
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:]), "", *NOTES])
