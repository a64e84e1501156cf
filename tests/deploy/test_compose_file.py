"""compose_file.py reads compose files as Compose does, with no Compose installed; Compose v2 agrees."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose_file import ComposeFileError, load
from tests.deploy.conftest import CLUSTER_FILE, COMPOSE_FILE, Compose

Config = Callable[..., dict[str, Any]]


def _unescaped(node: Any) -> Any:
    """Compose v2's `config` prints `$` as `$$`, so that its output is a compose file again."""
    if isinstance(node, str):
        return node.replace("$$", "$")
    if isinstance(node, dict):
        return {key: _unescaped(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unescaped(item) for item in node]
    return node


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_compose_is_checked_without_compose_v1(
    compose_config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On Debian 13 the compose checks failed, 23 of them: they read `docker-compose config` through
    Debian 12's docker-compose, Compose v1, a Python script whose interpreter they borrowed for
    PyYAML, and Debian 13's docker-compose is Compose v2, a Go binary. Now no Compose is needed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    services = compose_config(files=(COMPOSE_FILE, CLUSTER_FILE))["services"]
    assert services["nginx"]["environment"]["NGINX_LISTEN"] == "80"


@pytest.mark.parametrize(
    ("service", "wrong"),
    [
        ("{image: redis:7, restrat: always}", "'restrat' does not match any of the regexes"),
        ("{image: redis:7, depends_on: {db: {condition: started}}}", "'started' is not one of"),
        ("{image: redis:7, build: 5}", "5 is not of type 'string'"),
    ],
    ids=["unknown-key", "bad-condition", "bad-build"],
)
def test_a_file_breaking_the_specification_is_refused_naming_the_place(
    tmp_path: Path, service: str, wrong: str
) -> None:
    path = _write(tmp_path / "compose.yml", f"services:\n  web: {service}\n")
    with pytest.raises(ComposeFileError, match=r"services\.web") as refused:
        load([path], {})
    assert wrong in str(refused.value)


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A:-default}", {}, "default"),
        ("${A:-default}", {"A": ""}, "default"),
        ("${A-default}", {"A": ""}, ""),
        ("${A-default}", {"A": "set"}, "set"),
        ("${A:+other}", {"A": "set"}, "other"),
        ("${A:+other}", {"A": ""}, ""),
        ("$A and ${B}", {"A": "a", "B": "b"}, "a and b"),
        ("$$A costs $$5", {"A": "a"}, "$A costs $5"),
        ("${A:?must be set}", {"A": "here"}, "here"),
    ],
)
def test_interpolation_follows_the_specification(
    tmp_path: Path, value: str, env: dict[str, str], expected: str
) -> None:
    path = _write(
        tmp_path / "compose.yml", f"services:\n  web:\n    image: x\n    environment:\n      V: '{value}'\n"
    )
    assert load([path], env)["services"]["web"]["environment"]["V"] == expected


@pytest.mark.parametrize("value", ["${A:?must be set}", "${A?must be set}", "${A:-x"])
def test_a_required_variable_unset_or_a_broken_reference_is_refused(tmp_path: Path, value: str) -> None:
    path = _write(
        tmp_path / "compose.yml", f"services:\n  web:\n    image: x\n    environment:\n      V: '{value}'\n"
    )
    with pytest.raises(ComposeFileError, match=r"must be set|invalid interpolation"):
        load([path], {})


def test_an_override_merges_mappings_replaces_commands_and_extends_lists(tmp_path: Path) -> None:
    base = _write(
        tmp_path / "base.yml",
        "services:\n  web:\n    image: x\n    command: [a, b]\n    volumes: [./data:/data]\n"
        "    environment: [A=1, B]\n    depends_on: [db]\n  db:\n    image: y\n",
    )
    override = _write(
        tmp_path / "override.yml",
        "services:\n  web:\n    command: [c]\n    volumes: [logs:/logs]\n    environment: {C: '3'}\n"
        "    depends_on: {db: {condition: service_healthy}}\n",
    )
    web = load([base, override], {})["services"]["web"]
    assert web["command"] == ["c"]
    assert web["volumes"] == [f"{tmp_path}/data:/data", "logs:/logs"]
    assert web["environment"] == {"A": "1", "B": None, "C": "3"}
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), (COMPOSE_FILE, CLUSTER_FILE)], ids=["base", "cluster"])
def test_compose_v2_reads_the_files_as_the_checks_do(
    compose_v2: Compose, compose_config: Config, files: tuple[Path, ...]
) -> None:
    """What users run: Compose v2's `config` accepts the files and resolves each service's environment,
    command and dependencies as the checks read them (it needs no Docker engine for `config`)."""
    env_file = {"PORT": "9090", "REDIS_URL": "redis://r:6379/3"}
    result = compose_v2("config", "--format", "json", env_file=env_file, files=files)
    assert result.returncode == 0, result.stderr
    theirs = _unescaped(json.loads(result.stdout))["services"]
    ours = compose_config(env_file, files=files)["services"]
    assert set(theirs) == set(ours)
    for name, service in ours.items():
        assert (theirs[name].get("environment") or {}) == service["environment"], name
        assert theirs[name].get("command") == service.get("command"), name
        assert set(theirs[name].get("depends_on") or {}) == set(service.get("depends_on") or {}), name
    (port,) = theirs["nginx"]["ports"]
    assert (int(port["published"]), port["target"]) == (9090, 80)
