"""`make bench` end to end at a scale that takes seconds: the harness works against every system.

Not a measurement (`make bench` is): ten clients, one second of publishing, and every figure the ratio
table needs must come out, against the project, nginx + nchan and django-eventstream alike.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import ratios
from bench.runner import SYSTEMS, Options, run_scenario
from bench.scenarios import by_name

# fanout-1k at a hundredth of its clients and half its rate, for one second.
SMOKE = replace(by_name("fanout-1k"), per_channel=10, rate=50, duration=1.0, drain=5.0)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    options = Options(run_root=tmp_path_factory.mktemp("bench"), unix_upstream=True, settle_s=0.2)
    return {system: run_scenario(SMOKE, system, options, budget_s=60) for system in SYSTEMS}


@pytest.mark.parametrize("system", SYSTEMS)
def test_ten_clients_get_every_event_from_each_system(
    results: dict[str, dict[str, object]], system: str
) -> None:
    result = results[system]
    assert "error" not in result, result["error"]
    assert result["alive_at_start"] == 10
    assert result["expected"] == 50 * 10
    assert (result["delivered"], result["lost"], result["duplicates"]) == (500, 0, 0)
    # Counted in clock ticks of 10 ms: ten clients for one second may cost the server less than one.
    assert isinstance(result["server_cpu_us_per_event"], float)
    assert result["server_cpu_us_per_event"] >= 0
    assert result["server_ctxsw_per_event"] is None or result["server_ctxsw_per_event"] >= 0


def test_the_ratio_table_compares_the_two(results: dict[str, dict[str, object]]) -> None:
    table = ratios.table(list(results.values()))
    row = next(line for line in table.splitlines() if line.startswith("| 1000 clients x 100 msg/s"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    nchan, project, ratio = (float(cells[i].rstrip("x").replace(",", "")) for i in (1, 3, 4))
    assert ratio == pytest.approx(project / nchan, abs=0.01)
