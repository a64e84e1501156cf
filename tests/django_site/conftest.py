"""Test setup for django_site: Django on sys.path and configured, a fresh key prefix per test.

Django is set up here rather than through pytest-django's ini options so the settings'
environment (DJANGO_DEBUG, DJANGO_SECRET_KEY) is in place before config.settings is imported.
`redis_server` and `redis_client` come from tests/conftest.py (a real redis-server on a free port).
Besides SQLite (`default`), a real PostgreSQL server of its own is the database `postgres`, for the
tests that run on both (the `database` fixture).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from devstack.postgres import PostgresServer
from devstack.processes import free_port
from devstack.services import RedisServer

DJANGO_SITE = Path(__file__).resolve().parents[2] / "django_site"

TEST_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
}


DATABASES = ("default", "postgres")
RedisAway = Callable[[], AbstractContextManager[None]]
_postgres: list[PostgresServer] = []
_temporary_dirs: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    if str(DJANGO_SITE) not in sys.path:
        sys.path.insert(0, str(DJANGO_SITE))
    os.environ.update(TEST_ENV)
    import django
    from django.conf import settings

    from config.env import read_database_url

    server = PostgresServer(Path(tempfile.mkdtemp(prefix="tests-postgres-")), free_port()).start()
    _postgres.append(server)
    settings.DATABASES["postgres"] = read_database_url({"DATABASE_URL": server.url}, "DATABASE_URL")
    # An SQLite file, as `make run` has, not Django's default in-memory test database: Django never
    # closes an in-memory database's connections, so those the relay's and the tests' threads open
    # were left to the garbage collector (a ResourceWarning on Python 3.13, an error here).
    sqlite_dir = Path(tempfile.mkdtemp(prefix="tests-sqlite-"))
    _temporary_dirs.append(sqlite_dir)
    settings.DATABASES["default"]["TEST"] = {"NAME": str(sqlite_dir / "test.sqlite3")}
    django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in _postgres:
        server.stop()
        shutil.rmtree(server.run_dir, ignore_errors=True)
    for directory in _temporary_dirs:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """Each database the outbox is tested on: SQLite (no row locks) and PostgreSQL (skip-locked)."""
    alias: str = request.param
    return alias


@pytest.fixture(autouse=True)
def key_prefix(settings: Settings, redis_server: RedisServer) -> str:
    """Point the publisher at the test server with fresh key names, so tests never collide."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.SSE_REDIS_URL = redis_server.url
    settings.SSE_KEY_PREFIX = prefix
    return prefix


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def unreachable_redis_url() -> str:
    """A Redis URL with nothing listening: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def redis_away(settings: Settings, redis_server: RedisServer, unreachable_redis_url: str) -> RedisAway:
    """`with redis_away():` the site's Redis refuses connections, as a stopped one does; after the
    block it is the test server again."""

    @contextmanager
    def away() -> Iterator[None]:
        settings.SSE_REDIS_URL = unreachable_redis_url
        try:
            yield
        finally:
            settings.SSE_REDIS_URL = redis_server.url

    return away


@pytest.fixture(scope="session", autouse=True)
def _close_publisher_client() -> Iterator[None]:
    yield
    from django_sse_push import _redis

    _redis.close()
