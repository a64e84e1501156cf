"""`rewind=N`: a stream starts with each channel's last N events, then live, each event once."""

from __future__ import annotations

import httpx
import redis

from devstack.services import RedisServer, SseService
from devstack.stack import Stack
from sse_service.policies import default_table
from tests.support.publish import ContinuousPublisher, publish, redis_at
from tests.support.sse import Event, follow, open_stream


async def test_rewind_starts_with_the_last_n_events_then_goes_live(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    ids = [publish(redis_client, channel, str(n)) for n in range(30)]
    async with open_stream(f"{sse_service.url}/sse/{channel}?rewind=20") as stream:
        await stream.wait_for_events(20)
        live = publish(redis_client, channel, '"live"')
        events = await stream.wait_for_events(21)
    assert [e.id for e in events] == [f"{channel}/{i}" for i in [*ids[10:], live]]
    # The opening block stands before the rewound events: a reconnect from it gets them again.
    assert f"id: {channel}/{ids[9]}\nevent: sse.start" in stream.raw.decode()


async def test_rewind_over_a_short_history_gets_all_of_it_without_a_reset(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    ids = [publish(redis_client, channel, str(n), maxlen=5) for n in range(12)]
    empty = channel + ".empty"
    url = f"{sse_service.url}/sse/?channel={channel}&channel={empty}&rewind=20"
    async with open_stream(url) as stream:
        await stream.wait_for_events(5)
        live = publish(redis_client, empty, '"first"')
        events = await stream.wait_for_events(6)
    assert [(e.channel, e.stream_id) for e in events] == [(channel, i) for i in ids[7:]] + [(empty, live)]
    assert b"event: reset" not in stream.raw


async def test_events_published_during_a_rewind_arrive_exactly_once_in_order(
    sse_service: SseService, redis_server: RedisServer, redis_client: redis.Redis, channel: str
) -> None:
    before = [publish(redis_client, channel, str(n)) for n in range(50)]
    publisher = ContinuousPublisher(redis_at(redis_server.port), [channel], count=300, rate=300)
    publisher.start()
    published = publisher.published[channel]

    def done(events: list[Event]) -> bool:
        return not publisher.is_alive() and bool(events) and events[-1].stream_id == published[-1]

    followed = await follow(f"{sse_service.url}/sse/{channel}?rewind=40", done, timeout=10)
    publisher.join(5)
    # The stream opened while the publisher ran: its 40 were the newest then, whichever they were.
    every = before + published
    assert [e.id for e in followed.events] == [f"{channel}/{i}" for i in every[-len(followed.events) :]]
    assert len(followed.events) > 40


async def test_a_channel_with_a_resume_position_resumes_instead_of_rewinding(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    other = channel + ".other"
    ids = [publish(redis_client, channel, str(n)) for n in range(5)]
    others = [publish(redis_client, other, str(n)) for n in range(5)]
    # An id of the old format naming only `channel`: `other` has no position and rewinds.
    headers = {"Last-Event-ID": f"{channel}/{ids[3]}"}
    url = f"{sse_service.url}/sse/?channel={channel}&channel={other}&rewind=2"
    async with open_stream(url, headers=headers) as stream:
        events = await stream.wait_for_events(3)
    assert sorted((e.channel, e.stream_id) for e in events) == sorted(
        [(channel, ids[4]), (other, others[3]), (other, others[4])]
    )


async def test_bad_rewind_gets_a_400_with_a_one_line_reason_through_nginx(stack: Stack, channel: str) -> None:
    maximum = default_table(["public."]).for_channel(channel).rewind_max
    async with httpx.AsyncClient(base_url=stack.nginx.url) as client:
        for query, reason in [
            ("rewind=ten", "Invalid rewind: rewind must be a whole number of events, got 'ten'\n"),
            ("rewind=", "Invalid rewind: rewind must be a whole number of events, got ''\n"),
            (
                f"rewind={maximum + 1}",
                f"Invalid rewind: rewind={maximum + 1} is over the maximum of {maximum} for these channels\n",
            ),
        ]:
            response = await client.get(f"/sse/{channel}?{query}")
            assert (response.status_code, response.text) == (400, reason)


async def test_rewind_through_nginx(stack: Stack, channel: str) -> None:
    with stack.redis.client() as client:
        ids = [publish(client, channel, str(n)) for n in range(25)]
        async with open_stream(f"{stack.nginx.url}/sse/{channel}?rewind=20") as stream:
            events = await stream.wait_for_events(20)
    assert [e.id for e in events] == [f"{channel}/{i}" for i in ids[5:]]


def test_the_service_writes_the_table_it_runs_with_to_redis(
    sse_service: SseService, redis_client: redis.Redis
) -> None:
    assert redis_client.get("sse:policies") == default_table(["public."]).canonical().encode()
