"""Streams the service refuses with a clear status and one line saying why."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from devstack import tickets
from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.integration.probes import scrape
from tests.support.sse import EventStream, open_stream


@pytest.fixture
def three_channel_sse(redis_server: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    env = {"SSE_MAX_CHANNELS_PER_PROCESS": "3"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    yield service
    service.stop()


async def test_new_channels_past_the_process_cap_are_a_503_and_existing_ones_still_open(
    three_channel_sse: SseService, channel: str
) -> None:
    """Each new channel costs a subscription and presence writes, and the per-address cap is
    bypassed by rotating addresses: the process bounds how many distinct channels it serves."""
    url = three_channel_sse.url
    async with (
        open_stream(f"{url}/sse/?channel={channel}.1&channel={channel}.2"),
        open_stream(f"{url}/sse/{channel}.3"),
        httpx.AsyncClient(base_url=url) as client,
    ):
        refused = await client.get(f"/sse/{channel}.4")
        assert refused.status_code == 503
        assert refused.text == "Too many channels on this server: at most 3; retry later\n"
        async with open_stream(f"{url}/sse/{channel}.1") as again:
            assert again.response.status_code == 200
        assert (await scrape(three_channel_sse))[
            'sse_streams_refused_total{reason="channels per process"}'
        ] == 1
    # Once the streams have gone, their channels no longer count.
    async with open_stream(f"{url}/sse/{channel}.4") as later:
        assert later.response.status_code == 200


@pytest.fixture
def reserving_sse(redis_server: RedisServer, tmp_path: Path) -> Iterator[SseService]:
    env = {"SSE_MAX_CHANNELS_PER_PROCESS": "10", "SSE_RESERVED_PRIVATE_CHANNELS": "4"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    yield service
    service.stop()


async def test_made_up_public_channels_cannot_crowd_out_a_users_private_channel(
    reserving_sse: SseService, redis_client: redis.Redis, channel: str, private_channel: str, user_id: str
) -> None:
    """Regression: two clients holding idle streams on made-up `public.*` names (no ticket needed)
    filled SSE_MAX_CHANNELS_PER_PROCESS, and from then on a logged-in user's `user.<pk>` with a
    valid ticket got 503 like everyone else. Public channels now stop short of the private reserve."""
    url = reserving_sse.url
    async with contextlib.AsyncExitStack() as streams, httpx.AsyncClient(base_url=url) as client:
        opened: list[EventStream] = []
        for n in range(10):
            # Two clients (addresses, as nginx would forward them), made-up names, two per stream.
            names = "&".join(f"channel={channel}.made-up.{n}.{k}" for k in range(2))
            headers = {"X-Forwarded-For": f"203.0.113.{n % 2 + 1}"}
            stream = await streams.enter_async_context(open_stream(f"{url}/sse/?{names}", headers=headers))
            if stream.response.status_code != 200:
                break
            opened.append(stream)

        token = tickets.issue(redis_client, [private_channel], user=user_id)
        async with open_stream(f"{url}/sse/{private_channel}?ticket={token}") as private:
            assert private.response.status_code == 200
        assert len(opened) == 3  # six public channels: the other four are the private reserve
        await stream.response.aread()
        assert (stream.response.status_code, stream.response.text) == (
            503,
            "Too many public channels on this server: at most 6; retry later\n",
        )
        metrics = await scrape(reserving_sse)
        assert metrics['sse_streams_refused_total{reason="public channels per process"}'] == 1
        assert metrics['sse_streams_refused_total{reason="channels per process"}'] == 0
        refused = await client.get(f"/sse/{channel}.one-more")
        assert refused.status_code == 503


async def test_a_url_longer_than_nginx_takes_is_a_414_pointing_at_the_header(
    sse_service: SseService, channel: str
) -> None:
    channels = "&".join(f"channel={channel}{n:03d}{'x' * 100}" for n in range(32))
    positions = ",".join(f"{channel}{n:03d}{'x' * 100}/1700000000000-0" for n in range(32))
    async with httpx.AsyncClient(base_url=sse_service.url) as client:
        response = await client.get(f"/sse/?{channels}&lastEventId={positions}")
    assert response.status_code == 414
    assert "Last-Event-ID header" in response.text
