"""The figures compared with the peer, nginx + nchan, and the table of project / nchan ratios.

Each figure is one number of one scenario's result for each system; the ratio is project / nchan, so
below 1 is better for latency, memory, time and CPU, and above 1 better for deliveries. The goals are
how close the project means to be to the C implementation on the same machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]


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
        met = (self.max_ratio is None or ratio <= self.max_ratio) and (
            self.min_ratio is None or ratio >= self.min_ratio
        )
        return "yes" if met else "no"


FIGURES = (
    Figure("1000 clients x 100 msg/s: deliveries/s", "fanout-1k", "delivered_per_s", min_ratio=1.0),
    Figure("same: p99 latency, ms", "fanout-1k", "lat_p99_ms", 1, max_ratio=1.3),
    Figure("same: server CPU per delivery, µs", "fanout-1k", "server_cpu_us_per_event", 2, max_ratio=1.3),
    Figure("5000 clients x 20 msg/s: deliveries/s", "fanout-5k", "delivered_per_s", min_ratio=1.0),
    Figure("same: p99 latency, ms", "fanout-5k", "lat_p99_ms", 1, max_ratio=1.3),
    Figure("same: server CPU per delivery, µs", "fanout-5k", "server_cpu_us_per_event", 2, max_ratio=1.3),
    Figure("5000 idle streams: server memory per stream, KB", "idle-5k", "rss_per_conn_kb", 1, max_ratio=2.0),
    Figure("time to connect 5000 streams, s", "connect-5k", "connect_s", 2, max_ratio=2.0),
    Figure("flood, 1000 clients, 5 s: lost", "flood-1k", "lost", zero=True),
    # Each publisher goes as fast as its way in takes: the Lua step on Redis, or a POST to nchan.
    Figure("flood: deliveries/s, each publishing as fast as it can", "flood-1k", "delivered_per_s"),
    Figure("100 channels x 50 clients, 1000 msg/s: p99 latency, ms", "channels-100x50", "lat_p99_ms", 1),
    Figure(
        "20,000 idle streams, one SSE process without nginx: memory per stream, KB",
        "idle-20k",
        "rss_per_conn_kb",
        1,
    ),
)

NOTES = (
    "ratio = project / nchan, both measured in this run on this machine, with the same load client.",
    "Server = the SSE service + nginx for the project, nginx (nchan runs inside it) for the peer.",
    "idle-20k: the project's one SSE process alone (the template's nginx cannot hold 40,000",
    "connections), nchan's nginx as usual.",
)


def _value(results: Sequence[Result], system: str, figure: Figure) -> float | None:
    for result in results:
        if result.get("system") == system and result["scenario"] == figure.scenario and "error" not in result:
            value = result.get(figure.key)
            return None if value is None else float(value)
    return None


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(project: float | None, nchan: float | None, figure: Figure) -> tuple[float | None, str]:
    if project is None or nchan is None:
        return None, "-"
    if figure.zero and project == nchan == 0:
        return None, "="
    if nchan == 0:
        return None, "-" if project == 0 else "∞"
    ratio = project / nchan
    return ratio, f"{ratio:.2f}x"


def table(results: Sequence[Result]) -> str:
    """The figures as a Markdown table (it reads as well in a terminal as in the README)."""
    rows = [["figure", "nchan", "project", "ratio", "goal", "met"]]
    for figure in FIGURES:
        project = _value(results, "project", figure)
        nchan = _value(results, "nchan", figure)
        if project is None and nchan is None:
            continue
        ratio, shown = _ratio(project, nchan, figure)
        rows.append(
            [
                figure.label,
                _num(nchan, figure.digits),
                _num(project, figure.digits),
                shown,
                figure.goal(),
                figure.verdict(project, ratio),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligns = ["<", ">", ">", ">", "<", "<"]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 1) + (":" if a == ">" else "-") for a, w in zip(aligns, widths, strict=True))
        + "|"
    )
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:]), "", *NOTES])
