"""The Grafana dashboard and the alert rules ask only for metrics the running processes export.

A query naming a metric nobody exports shows an empty panel, or an alert that can never fire, and
nothing says so: here every `sse_*` name in a dashboard query or an alert expression is looked for in
the /metrics of a running SSE service and of a running outbox relay (the `stack` fixture).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml

from devstack.stack import Stack

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "sse-push.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
_METRIC = re.compile(r"\bsse_[a-z_]+\b")


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    return [target["expr"] for panel in panels for target in panel["targets"]]


def _alert_queries() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _exported(url: str) -> set[str]:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    return {line.split("{")[0].split()[0] for line in response.text.splitlines() if line and line[0] != "#"}


def test_every_metric_a_query_names_is_exported(stack: Stack) -> None:
    exported = _exported(f"{stack.sse.url}/metrics") | _exported(stack.relay.metrics_url)
    named = {name for query in _dashboard_queries() + _alert_queries() for name in _METRIC.findall(query)}
    assert named, "no sse_* metric named in any query"
    assert named - exported == set(), f"named but not exported: {sorted(named - exported)}"


def test_the_dashboard_covers_the_service_and_the_relay() -> None:
    named = {name for query in _dashboard_queries() for name in _METRIC.findall(query)}
    assert any(name.startswith("sse_outbox_") for name in named)
    assert {"sse_connections", "sse_redis_connected", "sse_channels_in_phase"} <= named


def test_every_panel_query_uses_the_chosen_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
