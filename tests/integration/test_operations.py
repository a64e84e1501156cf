"""What operators see: Prometheus metrics, and listener counts that Django can read."""

from __future__ import annotations

import asyncio

import redis

from devstack.services import SseService
from devstack.stack import Stack
from tests.integration.probes import scrape
from tests.support.publish import publish
from tests.support.sse import open_stream


async def test_metrics_move_as_clients_connect_and_events_flow(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    before = await scrape(sse_service)
    async with (
        open_stream(f"{sse_service.url}/sse/{channel}") as one,
        open_stream(f"{sse_service.url}/sse/{channel}") as two,
    ):
        during = await scrape(sse_service)
        publish(redis_client, channel, '{"m":1}')
        await one.wait_for_events(1)
        await two.wait_for_events(1)
        after = await scrape(sse_service)
    assert during["sse_connections"] == before["sse_connections"] + 2
    assert during["sse_channels_subscribed"] >= 1
    assert after["sse_messages_received_total"] == before["sse_messages_received_total"] + 1
    assert after["sse_events_delivered_total"] == before["sse_events_delivered_total"] + 2
    frame = len(f'id: {channel}/x-0\ndata: {{"m":1}}\n\n') - 3
    assert after["sse_bytes_sent_total"] - before["sse_bytes_sent_total"] >= 2 * frame
    assert after["sse_publish_to_send_seconds_count"] == before["sse_publish_to_send_seconds_count"] + 1
    assert after["sse_redis_connected"] == 1


async def test_subscriber_count_in_django_sums_live_listeners(stack: Stack, channel: str) -> None:
    def count() -> int:
        code = f"from django_sse_push.presence import subscriber_count; print(subscriber_count({channel!r}))"
        return int(stack.django.manage("shell", "-v", "0", "-c", code).stdout)

    async def eventually(expected: int) -> int:
        async with asyncio.timeout(15):
            while (seen := await asyncio.to_thread(count)) != expected:
                await asyncio.sleep(0.3)
        return seen

    assert await eventually(0) == 0
    async with (
        open_stream(f"{stack.nginx.url}/sse/{channel}"),
        open_stream(f"{stack.nginx.url}/sse/{channel}"),
    ):
        assert await eventually(2) == 2
    assert await eventually(0) == 0
