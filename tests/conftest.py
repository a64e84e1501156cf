"""Real processes on free ports: redis-server, the SSE service (uvicorn), Django and nginx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from devstack.stack import Stack

# Short heartbeats and presence reports, so tests see them within their patience.
TEST_SSE_ENV = {"SSE_HEARTBEAT_SECONDS": "1", "SSE_PRESENCE_SECONDS": "0.5"}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


@pytest.fixture(scope="session")
def sse_service(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SseService]:
    service = SseService(tmp_path_factory.mktemp("sse"), redis_server.url, free_port(), env=TEST_SSE_ENV)
    yield service.start()
    service.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(tmp_path_factory.mktemp("stack"), sse_env=TEST_SSE_ENV).start()
    yield started
    started.stop()


@pytest.fixture
def channel() -> str:
    """A public channel no other test uses, so tests can share one Redis."""
    return f"public.test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def private_channel() -> str:
    """A private channel (no public prefix) no other test uses."""
    return f"private.test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def user_id() -> str:
    """A user id no other test uses, for tickets written straight into Redis."""
    return f"u{uuid.uuid4().hex[:10]}"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path
