"""The hub in-process against a real redis-server, with a subscription link that is slow to connect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from starlette.types import Message

from devstack.services import RedisServer
from sse_service.hub import Hub
from sse_service.policies import parse_table
from sse_service.protocol import RedisNames
from sse_service.redis_clients import SingleRedis
from sse_service.settings import Settings
from sse_service.subscriber import Subscriber
from tests.support.publish import publish


class SlowToConnect(SingleRedis):
    """Each new link takes a while to connect, as a cluster node's link does, made on first use."""

    def connection(self, node: str) -> Connection:
        connection = super().connection(node)
        connect = connection.connect

        async def slow_connect() -> None:
            await asyncio.sleep(0.5)
            await connect()  # type: ignore[no-untyped-call]

        connection.connect = slow_connect  # type: ignore[method-assign]
        return connection


@asynccontextmanager
async def running_hub(settings: Settings, topology: SingleRedis) -> AsyncIterator[Hub]:
    commands = aioredis.Redis.from_url(settings.redis_url)
    hub = Hub(settings, commands, topology)
    running = asyncio.create_task(hub.run())
    try:
        yield hub
    finally:
        hub.shutdown()
        running.cancel()
        await commands.aclose()


@pytest.fixture
async def slow_hub(redis_server: RedisServer) -> AsyncIterator[Hub]:
    settings = Settings(redis_url=redis_server.url, heartbeat_seconds=1)
    async with running_hub(settings, SlowToConnect(redis_server.url)) as hub:
        yield hub


async def test_a_stream_starts_only_once_its_channel_is_subscribed_even_on_a_link_still_connecting(
    slow_hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    """Regression: `attach` returned while the link was still connecting, so the stream said
    `: connected` before Redis had the subscription, and what was published at once was lost."""
    written: list[bytes] = []

    async def send(message: Message) -> None:
        written.append(message["body"])

    subscriber = Subscriber((channel,), send, 1 << 20)
    subscriber.open(await slow_hub.attach(subscriber), b"")
    subscriber.go_live()
    event_id = publish(redis_client, channel, '"at once"')
    async with asyncio.timeout(5):
        while not written:
            await asyncio.sleep(0.01)
    assert written == [f'id: {channel}/{event_id}\ndata: "at once"\n\n'.encode()]


@pytest.fixture
async def delayed_hub(redis_server: RedisServer) -> AsyncIterator[Hub]:
    settings = Settings(redis_url=redis_server.url, write_delay_ms=300)
    async with running_hub(settings, SingleRedis(redis_server.url)) as hub:
        yield hub


async def test_events_within_the_write_delay_reach_a_stream_in_one_write_in_order(
    delayed_hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    """SSE_WRITE_DELAY_MS: events published one by one within the delay go out as one write,
    in the order published, and none is lost; the publish-to-send metric includes the wait (it was
    observed when the event arrived, so a delay never showed in it)."""
    written: list[bytes] = []

    async def send(message: Message) -> None:
        written.append(message["body"])

    subscriber = Subscriber((channel,), send, 1 << 20)
    subscriber.open(await delayed_hub.attach(subscriber), b"")
    subscriber.go_live()
    ids = [publish(redis_client, channel, f'"{n}"') for n in range(5)]
    async with asyncio.timeout(5):
        while not written:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)
    expected = b"".join(f'id: {channel}/{i}\ndata: "{n}"\n\n'.encode() for n, i in enumerate(ids))
    assert written == [expected]
    # sse_publish_to_send_seconds counts the wait: the first event waited out most of the 300 ms.
    observed = {s.name: s.value for s in delayed_hub.latency.collect()[0].samples}
    assert observed["sse_publish_to_send_seconds_count"] == 5
    assert observed["sse_publish_to_send_seconds_sum"] >= 0.25


async def test_an_event_waiting_out_the_write_delay_is_written_before_a_gap_fill_after_it(
    delayed_hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    """With SSE_WRITE_DELAY_MS, an event still waiting when its channel's subscription is
    interrupted must reach the stream before what the gap fill reads after it: written after, the
    stream would drop it as older than its position, and the client would never see it."""
    written: list[bytes] = []

    async def send(message: Message) -> None:
        written.append(message["body"])

    subscriber = Subscriber((channel,), send, 1 << 20)
    subscriber.open(await delayed_hub.attach(subscriber), b"")
    subscriber.go_live()
    first = publish(redis_client, channel, '"first"')
    async with asyncio.timeout(5):
        while delayed_hub.stats.messages_received < 1:
            await asyncio.sleep(0.005)
    pubsub = RedisNames("sse").pubsub_channel(channel)
    delayed_hub.interrupted([pubsub], broken=False)
    second = publish(redis_client, channel, '"second"')
    delayed_hub.confirmed([pubsub])
    await asyncio.sleep(0.6)
    assert b"".join(written) == (
        f'id: {channel}/{first}\ndata: "first"\n\nid: {channel}/{second}\ndata: "second"\n\n'.encode()
    )


@pytest.fixture
async def prefix_delayed_hub(redis_server: RedisServer) -> AsyncIterator[Hub]:
    table = parse_table(
        '{"public.": {"public": true}, "public.batched.": {"public": true, "write_delay_ms": 300}}'
    )
    settings = Settings(redis_url=redis_server.url, channel_policies=table)
    async with running_hub(settings, SingleRedis(redis_server.url)) as hub:
        yield hub


async def test_a_prefixs_write_delay_batches_its_channels_and_leaves_the_others_at_once(
    prefix_delayed_hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    """`write_delay_ms` in a prefix's policy: that prefix's events go out in one write per delay,
    while a channel of another prefix, under the service's default of no delay, gets each at once."""
    batched = channel.replace("public.", "public.batched.", 1)
    written: dict[str, list[bytes]] = {channel: [], batched: []}

    def sender(name: str) -> Callable[[Message], Awaitable[None]]:
        async def send(message: Message) -> None:
            written[name].append(message["body"])

        return send

    for name in written:
        subscriber = Subscriber((name,), sender(name), 1 << 20)
        subscriber.open(await prefix_delayed_hub.attach(subscriber), b"")
        subscriber.go_live()
    for n in range(3):
        publish(redis_client, channel, f'"{n}"')
        publish(redis_client, batched, f'"{n}"')
        await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        while not written[batched]:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)

    assert len(written[channel]) == 3
    assert len(written[batched]) == 1
    assert written[batched][0].count(b"data: ") == 3
