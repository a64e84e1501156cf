"""The hub's channel phases, driven by hand: the placement's reports are made up, the streams are real Redis.

The placement is never run, so no link connects: each test says what Redis confirmed, dropped or
delivered, and reads what a hand-written `send` got.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from starlette.types import Message

from devstack.processes import free_port
from devstack.services import RedisServer
from sse_service import channels
from sse_service import hub as hub_module
from sse_service.channels import Phase
from sse_service.ending import End
from sse_service.hub import Hub
from sse_service.redis_clients import SingleRedis
from sse_service.settings import Settings
from sse_service.subscriber import PING, Subscriber
from tests.support.publish import publish


class Written:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        self.chunks.append(message["body"])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@pytest.fixture
async def hub(redis_server: RedisServer) -> AsyncIterator[Hub]:
    commands = aioredis.Redis.from_url(redis_server.url)
    # Links would go to a port nothing listens on; the placement is never run anyway.
    yield Hub(Settings(heartbeat_seconds=1), commands, SingleRedis(f"redis://127.0.0.1:{free_port()}/0"))
    await commands.aclose()


def pubsub(channel: str) -> bytes:
    return f"sse:{{{channel}}}".encode()


def message(channel: str, event_id: str, data: str) -> list[bytes]:
    return [b"message", pubsub(channel), f"v1\n{event_id}\n\n{data}".encode()]


async def until(condition: object, timeout: float = 2.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def start(hub: Hub, channel: str) -> tuple[Subscriber, Written]:
    """A stream on `channel` whose subscription Redis confirms at once."""
    written = Written()
    subscriber = Subscriber((channel,), written.send, 1 << 20)
    attaching = asyncio.create_task(hub.attach(subscriber))
    await asyncio.sleep(0)
    hub.confirmed([pubsub(channel)])
    subscriber.open(await attaching, b"")
    subscriber.go_live()
    return subscriber, written


async def test_a_new_channel_starts_at_its_newest_event_once_confirmed(
    hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    newest = publish(redis_client, channel, "old")
    written = Written()
    subscriber = Subscriber((channel,), written.send, 1 << 20)
    attaching = asyncio.create_task(hub.attach(subscriber))
    await asyncio.sleep(0.05)
    assert not attaching.done()  # not confirmed yet
    assert hub.phase_counts()[Phase.SUBSCRIBING] == 1
    hub.confirmed([pubsub(channel)])
    assert await attaching == {channel: tuple(map(int, newest.split("-")))}
    assert hub.phase_counts()[Phase.LIVE] == 1


async def test_messages_arriving_while_the_gap_is_read_follow_it_once_each(
    hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    _, written = await start(hub, channel)
    hub.interrupted([pubsub(channel)], broken=True)
    missed = [publish(redis_client, channel, str(n)) for n in range(3)]
    hub.confirmed([pubsub(channel)])
    # Live copies of the last missed one and of a new one arrive while the gap is read: the gap
    # has both already (it was read after they were published).
    live = publish(redis_client, channel, "3")
    hub.received([message(channel, missed[2], "2"), message(channel, live, "3")])
    await until(lambda: hub.phase_counts()[Phase.LIVE] == 1)
    ids = [line.split(b"/")[1].decode() for line in written.body.split(b"\n") if line.startswith(b"id: ")]
    assert ids == [*missed, live]
    assert hub.stats.gaps_filled == 1
    assert hub.stats.duplicates_dropped == 2


async def test_a_fill_overtaken_by_a_new_interruption_leaves_the_channel_to_the_next_one(
    hub: Hub, redis_client: redis.Redis, channel: str
) -> None:
    _, written = await start(hub, channel)
    hub.interrupted([pubsub(channel)], broken=True)
    publish(redis_client, channel, "0")
    hub.confirmed([pubsub(channel)])
    hub.interrupted([pubsub(channel)], broken=True)  # before the fill could read anything
    await asyncio.sleep(0.1)
    assert hub.phase_counts()[Phase.SUBSCRIBING] == 1
    hub.confirmed([pubsub(channel)])
    await until(lambda: hub.phase_counts()[Phase.LIVE] == 1)
    assert written.body.count(b"data: 0") == 1


async def test_held_messages_past_their_bound_are_read_from_the_stream_instead(
    hub: Hub, redis_client: redis.Redis, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channels, "HELD_LIMIT_BYTES", 50)
    _, written = await start(hub, channel)
    hub.interrupted([pubsub(channel)], broken=True)
    hub.confirmed([pubsub(channel)])
    ids = [publish(redis_client, channel, str(n)) for n in range(5)]
    hub.received([message(channel, event_id, str(n)) for n, event_id in enumerate(ids)])
    await until(lambda: hub.phase_counts()[Phase.LIVE] == 1)
    assert [line for line in written.body.split(b"\n") if line.startswith(b"data")] == [
        b"data: %d" % n for n in range(5)
    ]


async def test_a_channel_unconfirmed_for_too_long_is_asked_again(
    hub: Hub, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bytes] = []

    def ask_again(pubsub_channels: list[bytes]) -> list[bytes]:
        asked.extend(pubsub_channels)
        return pubsub_channels

    monkeypatch.setattr(hub._placement, "ask_again", ask_again)
    subscriber = Subscriber((channel,), Written().send, 1 << 20)
    attaching = asyncio.create_task(hub.attach(subscriber))
    await asyncio.sleep(0)
    hub._check_phases(time.monotonic() + 1)
    assert asked == []  # not yet too long
    hub._check_phases(time.monotonic() + hub_module.STUCK_AFTER + 1)
    assert asked == [pubsub(channel)]
    assert hub.stats.channels_asked_again == 1
    hub.confirmed([pubsub(channel)])
    await attaching
    assert hub.phase_counts()[Phase.LIVE] == 1


async def test_a_stream_starts_anyway_when_redis_does_not_confirm_and_the_confirmation_fills_the_gap(
    hub: Hub, redis_client: redis.Redis, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "STUCK_AFTER", 0.05)
    written = Written()
    subscriber = Subscriber((channel,), written.send, 1 << 20)
    subscriber.open(await hub.attach(subscriber), b"")
    subscriber.go_live()
    event_id = publish(redis_client, channel, "late")
    hub.confirmed([pubsub(channel)])
    await until(lambda: written.chunks)
    assert written.body == f"id: {channel}/{event_id}\ndata: late\n\n".encode()


async def test_an_idle_stream_gets_the_heartbeat_and_shutdown_ends_every_stream(
    hub: Hub, channel: str
) -> None:
    subscriber, written = await start(hub, channel)
    hub._beat(time.monotonic())
    hub._beat(time.monotonic())
    assert written.chunks[-1] == PING
    hub.shutdown()
    assert subscriber.end is End.SERVER_SHUTDOWN
    late = Subscriber((channel,), Written().send, 1 << 20)
    await hub.attach(late)
    assert late.end is End.SERVER_SHUTDOWN


async def test_a_fill_overtaken_between_two_pages_leaves_no_gap(
    redis_server: RedisServer, redis_client: redis.Redis, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fill that kept reading after its channel was interrupted and confirmed again delivered its
    later pages to the new epoch, while the page read in between had been dropped: a gap."""
    commands = aioredis.Redis.from_url(redis_server.url)
    settings = Settings(send_buffer_bytes=200, max_payload_bytes=50)  # a few events per page
    paged = Hub(settings, commands, SingleRedis(f"redis://127.0.0.1:{free_port()}/0"))
    _, written = await start(paged, channel)
    paged.interrupted([pubsub(channel)], broken=True)
    for n in range(30):
        publish(redis_client, channel, str(n))
    deliver = paged._deliver_history
    pages = 0

    def deliver_then_disrupt(*args: Any) -> int:
        nonlocal pages
        pages += 1
        count = deliver(*args)
        if pages == 1:
            paged.interrupted([pubsub(channel)], broken=True)
            asyncio.get_running_loop().call_later(0.2, paged.confirmed, [pubsub(channel)])
        elif pages == 2:
            paged.confirmed([pubsub(channel)])
        return count

    monkeypatch.setattr(paged, "_deliver_history", deliver_then_disrupt)
    paged.confirmed([pubsub(channel)])
    await until(lambda: paged.phase_counts()[Phase.LIVE] == 1 and pages > 2)
    data = [line for line in written.body.split(b"\n") if line.startswith(b"data")]
    assert data == [b"data: %d" % n for n in range(30)]
    await commands.aclose()
