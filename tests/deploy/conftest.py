"""Fixtures for the deployment tests: compose config as data, template rendering, tool checks.

Independent of tests/conftest.py. Missing tools fail the tests with what to install; nothing skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
TEMPLATE = REPO / "nginx" / "nginx.conf.template"
RENDER_SH = REPO / "nginx" / "render.sh"

# Debian package that provides each tool the tests run.
_PACKAGES = {
    "docker-compose": "docker-compose",
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


@pytest.fixture
def compose(tmp_path: Path) -> Compose:
    """Run docker-compose with a clean env and an env file (empty unless given, so .env is ignored).

    `files` are the compose files, in order (docker-compose.yml alone unless given).
    """
    exe = _require("docker-compose")

    def run(
        *args: str, env_file: Mapping[str, str] | None = None, files: Sequence[Path] = (COMPOSE_FILE,)
    ) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "compose.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in (env_file or {}).items()))
        file_args = [arg for file in files for arg in ("-f", str(file))]
        return subprocess.run(
            [exe, *file_args, "--env-file", str(path), *args],
            env=_clean_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def _yaml_to_json(text: str) -> Any:
    # The test venv has no PyYAML; Debian's docker-compose is a script whose Python always has it.
    exe = _require("docker-compose")
    shebang = Path(exe).read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    if not shebang.startswith("#!"):
        pytest.fail(f"{exe} is not a Python script; use Debian's: apt-get install docker-compose")
    python = shebang[2:].strip().split()
    code = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    out = subprocess.run([*python, "-c", code], input=text, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def compose_config(compose: Compose) -> Callable[..., dict[str, Any]]:
    """The resolved compose file as data (`docker-compose config`), `$$` unescaped in environments."""

    def load(
        env_file: Mapping[str, str] | None = None, files: Sequence[Path] = (COMPOSE_FILE,)
    ) -> dict[str, Any]:
        result = compose("config", env_file=env_file, files=files)
        assert result.returncode == 0, result.stderr
        config: dict[str, Any] = _yaml_to_json(result.stdout)
        for service in config["services"].values():
            env = service.get("environment") or {}
            service["environment"] = {
                k: None if v is None else str(v).replace("$$", "$") for k, v in env.items()
            }
        return config

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
