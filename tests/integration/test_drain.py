"""The paced drain: a replica told to stop ends its streams over SSE_DRAIN_SECONDS, not all at once.

The rollover is `bench.rollover.roll`, the same helper `python -m bench rollover` runs with 2,000
streams; here a few hundred, on a short window, so the test takes seconds.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis

from bench.rollover import Plan, roll
from devstack.processes import free_port
from devstack.services import RedisServer, SseService, http_status
from tests.support.publish import publish
from tests.support.sse import open_stream

SHAPE = Plan(streams=240, channels=6, rate=40.0, drain_seconds=3.0, retry_ms=500, grace_seconds=2.0)


@pytest.mark.asyncio
async def test_rolling_one_replica_spreads_its_reconnects_over_the_drain(tmp_path: Path) -> None:
    """A replica given SIGTERM used to end every stream in the same instant: all its clients came
    back to the survivor in the same second, a connect storm. Drained over 3 s with jittered
    `retry:`, no second takes more than half of the reconnects, and nothing is lost or repeated."""
    result = await roll(tmp_path, SHAPE)
    moved = result["streams_by_replica"]["sse"]
    assert moved > 0, result
    assert result["alive_at_start"] == SHAPE.streams, result
    assert (result["lost"], result["duplicates"]) == (0, 0), result
    assert result["reconnects_logged"] == moved, result
    assert result["busiest_second_share"] <= 0.5, result["reconnects_per_second"]
    assert result["rolled_exit_s"] >= SHAPE.drain_seconds * 0.9, result
    assert result["alive_at_end"] == SHAPE.streams, result


@pytest.mark.asyncio
async def test_a_draining_replica_refuses_new_streams_and_still_delivers(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, channel: str
) -> None:
    """After SIGTERM the process takes no new stream (its readiness fails at once), keeps writing
    events to a stream it has not ended yet, and ends it with a jittered `retry:` near the window's end."""
    env = {"SSE_DRAIN_SECONDS": "2", "SSE_RETRY_MS": "1000", "SSE_HEARTBEAT_SECONDS": "1"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    try:
        async with open_stream(f"{service.url}/sse/{channel}") as stream:
            assert service.process is not None
            service.process.signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert _refused_or_unready(service), "a stopping replica must not look ready"
            publish(redis_client, channel, '{"n": 1}')
            await stream.wait_for_events(1, timeout=1.5)
            await stream.read_to_end(timeout=4)
            assert stream.retry is not None and 500 <= stream.retry <= 1500, stream.raw[-80:]
            assert "reconnect" in stream.comments
    finally:
        service.stop()


def _refused_or_unready(service: SseService) -> bool:
    try:
        return http_status(service.address, "/readyz") == 503
    except ConnectionError:
        return True
