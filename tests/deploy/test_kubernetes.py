"""The Kubernetes manifests (deploy/kubernetes/) are valid objects of the Kubernetes versions stated here,
wire their parts to each other, and give a stopping replica the time its drain takes.

Offline: kubernetes-validate carries the API's JSON schemas; strict mode rejects unknown fields, so a
misspelt key fails here rather than being dropped by the API server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sse_service.settings import Settings

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# The oldest and the newest Kubernetes the manifests are checked against (docs/deploying.md,
# "Deploying on Kubernetes").
VERSIONS = ("1.30.0", "1.37.0")


def _objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _config() -> dict[str, str]:
    data: dict[str, str] = _one("ConfigMap", "sse-push")["data"]
    return data


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_the_stated_versions(version: str) -> None:
    objects = _objects()
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_service_settings_in_the_config_map_are_accepted_by_the_service() -> None:
    settings = Settings.from_env({k: v for k, v in _config().items() if k.startswith("SSE_")})
    assert settings.drain_seconds > 0


def test_a_stopping_pod_has_the_time_its_drain_takes() -> None:
    """preStop, then the drain and the last farewell within uvicorn's cap, all before SIGKILL."""
    config = _config()
    drain = float(config["SSE_DRAIN_SECONDS"])
    grace = float(config["SSE_SHUTDOWN_GRACE_SECONDS"])
    deployment = _one("Deployment", "sse")
    container = _container(deployment)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    pause = float(pre_stop[1])
    args = container["args"]
    uvicorn_cap = float(args[args.index("--timeout-graceful-shutdown") + 1])
    termination = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert uvicorn_cap >= drain + grace
    assert termination >= pause + uvicorn_cap


def test_probes_point_at_readiness_and_liveness() -> None:
    container = _container(_one("Deployment", "sse"))
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "memory" in container["resources"]["requests"] and "cpu" in container["resources"]["requests"]


@pytest.mark.parametrize(
    ("kind", "name", "deployment"),
    [
        ("Service", "sse", "sse"),
        ("PodDisruptionBudget", "sse", "sse"),
        ("Service", "sse-relay-metrics", "sse-relay"),
    ],
)
def test_selectors_find_their_pods(kind: str, name: str, deployment: str) -> None:
    selector = _one(kind, name)["spec"]["selector"]
    selector = selector.get("matchLabels", selector)
    labels = _one("Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_named_ports_exist_on_the_containers() -> None:
    for service, deployment in (("sse", "sse"), ("sse-relay-metrics", "sse-relay")):
        ports = {p["name"] for p in _container(_one("Deployment", deployment))["ports"]}
        for port in _one("Service", service)["spec"]["ports"]:
            assert port["targetPort"] in ports
