from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from devstack.processes import free_port


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[aioredis.Redis]:
    """A client for a port nothing listens on: every command fails at once."""
    client = aioredis.Redis(port=free_port(), socket_connect_timeout=1)
    yield client
    await client.aclose()
