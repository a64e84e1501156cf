"""The two wheels, built from this checkout, and fresh virtualenvs that hold only what pip puts there.

Dependencies come from a wheelhouse of the tested pins (the requirements files, with the Django under
test), downloaded once into the test virtualenv and reused, so installing needs no network and takes
seconds (`--no-index`). The browser fixtures are the browser tests' own. `started` is when the wheels
began to build: the stranger test prints the time from it to the first event in the browser.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devstack.postgres import PostgresServer
from devstack.processes import Process, free_port, wait_until
from devstack.services import RedisServer, http_status
from tests.browser.conftest import browser, page  # noqa: F401  (fixtures, shared)

if TYPE_CHECKING:
    from tests.package.project import Project

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = (REPO / "sse_service" / "requirements.txt", REPO / "django_site" / "requirements.txt")
# What a new project adds beside the app (gunicorn, to serve it), pinned in the development pins.
PROJECT_EXTRAS = ("gunicorn",)

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
def started() -> float:
    """time.monotonic() when the first step of a new team's path (`make dist`) began."""
    return time.monotonic()


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory, started: float) -> Path:
    """Both wheels, built by `make dist` (the docs' step 1), in a directory of their own."""
    out = tmp_path_factory.mktemp("dist")
    run(["make", "--no-print-directory", "dist", f"DIST={out}", f"PYTHON={sys.executable}"], REPO)
    assert sorted(path.name.split("-")[0] for path in out.glob("*.whl")) == [
        "django_sse_push",
        "sse_push_service",
    ]
    return out


def pinned(names: Sequence[str]) -> list[str]:
    """`name==version` for each of `names`, as requirements-dev.txt pins it."""
    pins = {
        line.split("==")[0].lower(): line.strip()
        for line in (REPO / "requirements-dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    return [pins[name] for name in names]


def tested_pins() -> list[str]:
    """The runtime pins, with Django's replaced by the Django these tests run on: the matrix's Django 6
    leg gives the stranger's project Django 6, as a team starting on it would have."""
    pins = [
        line.strip()
        for path in REQUIREMENTS
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    django = f"Django=={version('django')}"
    return [django if pin.lower().startswith("django==") else pin for pin in pins] + pinned(PROJECT_EXTRAS)


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The pinned dependencies as wheels, kept in the test virtualenv between runs."""
    pins = tested_pins()
    house = Path(sys.prefix) / f"wheelhouse-{hashlib.sha256(' '.join(pins).encode()).hexdigest()[:12]}"
    if not (house / ".complete").exists():
        run([sys.executable, "-m", "pip", "download", "--quiet", "-d", str(house), *pins], REPO)
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


@pytest.fixture(scope="session")
def project(
    tmp_path_factory: pytest.TempPathFactory, fresh_venv: Venv, redis_server: RedisServer
) -> Iterator[Project]:
    """The stranger's project, served as in production: PostgreSQL, gunicorn, the service on its Unix
    socket, the relay, and nginx from the docs' snippets, which must pass `nginx -t` first."""
    from tests.package import project as site
    from tests.package import readme

    tmp_path = tmp_path_factory.mktemp("stranger")
    logs = tmp_path / "logs"
    logs.mkdir()
    django_bin = fresh_venv(["django-sse-push", *PROJECT_EXTRAS, "psycopg[binary]"])
    service_bin = fresh_venv(["sse-push-service"])
    postgres = PostgresServer(logs, free_port()).start()
    stack = ExitStack()
    stack.callback(postgres.stop)
    with stack:
        root = site.make_project(tmp_path / "mysite", django_bin, redis_server.port, postgres.url)
        made = site.Project(root, django_bin, service_bin, logs)
        made.manage(*readme.MIGRATE.split()[2:], "--noinput")
        made.manage("collectstatic", "--noinput")
        made.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            site.USERNAME,
            "--email",
            "s@example.com",
            DJANGO_SUPERUSER_PASSWORD=site.PASSWORD,
        )
        socket = tmp_path / "run" / "sse.sock"
        socket.parent.mkdir()
        service = Process.start(
            "sse-push-service",
            [str(service_bin / "sse-push-service"), "--uds", str(socket)],
            logs,
            env=clean_env(SSE_REDIS_URL=redis_server.url),
            cwd=tmp_path,
        )
        stack.callback(service.stop)
        relay = Process.start(
            "sse_relay",
            [str(django_bin / "python"), *readme.RELAY.split()[1:]],
            logs,
            env=made.env(),
            cwd=root,
        )
        stack.callback(relay.stop)
        served = stack.enter_context(made.serve())
        port = free_port()
        config = site.write_nginx(tmp_path / "nginx", port, socket, served.port, root / "static")
        tested = site.nginx_test(config)
        assert tested.returncode == 0, tested.stderr
        wait_until(lambda: http_status(socket, "/readyz") == 200, 20, "sse-push-service", service)
        stack.callback(site.start_nginx(config, port, logs).stop)
        made.url = f"http://127.0.0.1:{port}"
        made.relay, made.served = relay, served
        yield made
