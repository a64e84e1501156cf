"""The ratio table: project / nchan for each figure, and whether the goal is met."""

from __future__ import annotations

from typing import Any

from bench.ratios import table


def _result(system: str, scenario: str, **figures: Any) -> dict[str, Any]:
    return {"system": system, "scenario": scenario, **figures}


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_ratio_is_project_over_nchan_with_its_goal() -> None:
    text = table(
        [
            _result("nchan", "idle-5k", rss_per_conn_kb=14.0),
            _result("project", "idle-5k", rss_per_conn_kb=59.0),
        ]
    )
    assert _row(text, "5000 idle streams") == [
        "5000 idle streams: server memory per stream, KB",
        "14.0",
        "59.0",
        "4.21x",
        "≤ 2x",
        "no",
    ]


def test_no_loss_on_either_side_reads_as_equal_and_meets_the_goal() -> None:
    text = table([_result("nchan", "flood-1k", lost=0), _result("project", "flood-1k", lost=0)])
    assert _row(text, "flood, 1000 clients")[1:] == ["0", "0", "=", "0", "yes"]


def test_a_figure_missing_on_one_side_has_no_ratio() -> None:
    text = table(
        [
            _result("project", "fanout-1k", delivered_per_s=98_302),
            _result("nchan", "fanout-1k", error="stopped at its time limit of 60s"),
        ]
    )
    assert _row(text, "1000 clients x 100 msg/s")[1:4] == ["-", "98,302", "-"]


def test_scenarios_that_did_not_run_leave_no_row() -> None:
    text = table([_result("project", "idle-5k", rss_per_conn_kb=20.0)])
    assert "time to connect" not in text
