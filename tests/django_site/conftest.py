"""Test setup for django_site: Django on sys.path and configured, a fresh key prefix per test.

Django is set up here rather than through pytest-django's ini options so the settings'
environment (DJANGO_DEBUG, DJANGO_SECRET_KEY) is in place before config.settings is imported.
`redis_server` and `redis_client` come from tests/conftest.py (a real redis-server on a free port).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from devstack.processes import free_port
from devstack.services import RedisServer

DJANGO_SITE = Path(__file__).resolve().parents[2] / "django_site"

TEST_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
}


def pytest_configure(config: pytest.Config) -> None:
    if str(DJANGO_SITE) not in sys.path:
        sys.path.insert(0, str(DJANGO_SITE))
    os.environ.update(TEST_ENV)
    import django

    django.setup()


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


@pytest.fixture(scope="session", autouse=True)
def _close_publisher_client() -> Iterator[None]:
    yield
    from django_sse_push import _redis

    _redis.close()
