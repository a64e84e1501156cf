"""Fixtures for the deployment tests: compose config as data, template rendering, tool checks.

Independent of tests/conftest.py. Missing tools fail the tests with what to install; only the
comparison with Compose v2, which Debian 12 does not package, skips where none is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import compose_file

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CLUSTER_FILE = REPO / "docker-compose.cluster.yml"
TEMPLATE = REPO / "nginx" / "nginx.conf.template"
RENDER_SH = REPO / "nginx" / "render.sh"

# Debian package that provides each tool the tests run.
_PACKAGES = {
    "nginx": "nginx",
    "envsubst": "gettext-base",
    "awk": "mawk",
    "unshare": "util-linux",
    "mount": "mount",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
}

Compose = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[[Mapping[str, str], Path], Path]


def _require(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{tool} not found on PATH: apt-get install {_PACKAGES[tool]}")
    return path


def _clean_env(**extra: str) -> dict[str, str]:
    # A minimal environment, so the developer's shell cannot leak into what is checked.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **extra}


@pytest.fixture
def require() -> Callable[[str], str]:
    """Path of a tool; fails (never skips) with the Debian package to install."""
    return _require


@pytest.fixture
def template_vars() -> set[str]:
    """The `${VAR}` names the nginx template uses."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", TEMPLATE.read_text()))


def _compose_v2() -> list[str] | None:
    """Compose v2's command, if one is installed: `docker compose`, or Debian 13's docker-compose
    (Debian 12's is Compose v1, a Python script at its end of life, which answers 1.x)."""
    for command in (["docker", "compose"], ["docker-compose"]):
        exe = shutil.which(command[0])
        if exe is None:
            continue
        version = subprocess.run(
            [exe, *command[1:], "version", "--short"], env=_clean_env(), capture_output=True, text=True
        )
        major = version.stdout.strip().lstrip("v").split(".")[0]
        if version.returncode == 0 and major.isdigit() and int(major) >= 2:
            return [exe, *command[1:]]
    return None


@pytest.fixture
def compose_v2(tmp_path: Path) -> Compose:
    """Run Compose v2 with a clean env and an env file (empty unless given, so .env is ignored).

    `files` are the compose files, in order (docker-compose.yml alone unless given). Skips where no
    Compose v2 is installed: the schema and the semantic checks run everywhere regardless.
    """
    command = _compose_v2()
    if command is None:
        pytest.skip("no Compose v2 installed (Debian 13's docker-compose is one; Debian 12 has none)")

    def run(
        *args: str, env_file: Mapping[str, str] | None = None, files: Sequence[Path] = (COMPOSE_FILE,)
    ) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "compose.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in (env_file or {}).items()))
        file_args = [arg for file in files for arg in ("-f", str(file))]
        return subprocess.run(
            [*command, *file_args, "--env-file", str(path), *args],
            env=_clean_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def compose_config() -> Callable[..., dict[str, Any]]:
    """The compose files as Compose reads them (tests/deploy/compose_file.py): validated against the
    Compose Specification's schema, interpolated from `env_file` alone, merged, `$$` unescaped."""

    def load(
        env_file: Mapping[str, str] | None = None, files: Sequence[Path] = (COMPOSE_FILE,)
    ) -> dict[str, Any]:
        return compose_file.load(files, env_file or {})

    return load


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render the template with nginx/render.sh and the given variables; returns the output path."""
    _require("envsubst")

    def run(variables: Mapping[str, str], out: Path) -> Path:
        result = subprocess.run(
            ["sh", str(RENDER_SH), str(out)],
            env=_clean_env(**variables),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return out

    return run
