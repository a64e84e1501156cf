"""The two wheels, built from this checkout, and fresh virtualenvs that hold only what pip puts there.

Dependencies come from a wheelhouse of the tested pins (the requirements files), downloaded once into
the test virtualenv and reused, so installing needs no network and takes seconds (`--no-index`). The
browser fixtures are the browser tests' own.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.browser.conftest import browser, page  # noqa: F401  (fixtures, shared)

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = (REPO / "sse_service" / "requirements.txt", REPO / "django_site" / "requirements.txt")
# Where each distribution is built from.
PROJECTS = {"django-sse-push": REPO / "django_site", "sse-push-service": REPO}

Venv = Callable[[Sequence[str]], Path]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment less what would point Python or Django back at the checkout (the
    Django tests set DJANGO_SETTINGS_MODULE=config.settings in it), plus `extra`. devstack's Process
    adds its env to this process's, so what must not leak is also set here: PYTHONPATH empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "PYTHONPATH": "", **extra}


def run(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        list(args), cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both wheels, built as `make dist` builds them, in a directory of their own."""
    out = tmp_path_factory.mktemp("dist")
    for project in PROJECTS.values():
        run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(out), "."], project)
    return out


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The pinned dependencies as wheels, kept in the test virtualenv between runs."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in REQUIREMENTS)).hexdigest()[:12]
    house = Path(sys.prefix) / f"wheelhouse-{digest}"
    if not (house / ".complete").exists():
        requirements = [arg for path in REQUIREMENTS for arg in ("-r", str(path))]
        run([sys.executable, "-m", "pip", "download", "--quiet", "-d", str(house), *requirements], REPO)
        (house / ".complete").touch()
    return house


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheels: Path, wheelhouse: Path) -> Venv:
    """`fresh_venv(["django-sse-push"])`: a new virtualenv with those distributions installed from the
    wheels, their dependencies from the wheelhouse; returns its bin directory."""

    def make(distributions: Sequence[str]) -> Path:
        home = tmp_path_factory.mktemp("venv-" + "-".join(distributions))
        run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(home)], home)
        install = [sys.executable, "-m", "pip", "--python", str(home / "bin" / "python"), "install"]
        links = ["--no-index", "--find-links", str(wheels), "--find-links", str(wheelhouse)]
        run([*install, "--quiet", *links, *distributions], home)
        return home / "bin"

    return make
