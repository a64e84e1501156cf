"""The SSE service against a real redis-server: subscriptions, fan-out, frames, heartbeats."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack

import httpx
import redis

from devstack.services import SseService
from sse_service.protocol import channel_list_tag
from tests.integration.probes import scrape
from tests.support.publish import publish
from tests.support.sse import open_stream


def wait_for(check: object, timeout: float = 3.0) -> bool:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def pubsub_channels(client: redis.Redis) -> set[str]:
    return {name.decode() for name in client.pubsub_channels()}


async def test_channel_is_subscribed_while_a_client_listens_and_not_after(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    pubsub_name = f"sse:{{{channel}}}"
    assert pubsub_name not in pubsub_channels(redis_client)
    async with open_stream(f"{sse_service.url}/sse/{channel}"):
        assert pubsub_name in pubsub_channels(redis_client)
    assert wait_for(lambda: pubsub_name not in pubsub_channels(redis_client))


async def test_hundred_clients_of_one_channel_share_one_redis_connection(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    async with AsyncExitStack() as clients:
        streams = await asyncio.gather(
            *(
                clients.enter_async_context(open_stream(f"{sse_service.url}/sse/{channel}"))
                for _ in range(100)
            )
        )
        subscribers = redis_client.pubsub_numsub(f"sse:{{{channel}}}")[0][1]
        pubsub_connections = [c for c in redis_client.client_list() if "P" in c["flags"]]
        assert subscribers == 1
        assert len(pubsub_connections) == 1

        event_id = publish(redis_client, channel, '{"n":1}')
        for stream in streams:
            await stream.wait_for_events(1)
        expected = f'id: {channel}/{event_id}\ndata: {{"n":1}}\n\n'.encode()
        assert all(stream.raw.endswith(expected) for stream in streams)


async def test_several_channels_on_one_connection_in_publish_order(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    other = channel + ".other"
    url = f"{sse_service.url}/sse/?channel={channel}&channel={other}"
    async with open_stream(url) as stream:
        first = publish(redis_client, channel, '{"a":1}')
        second = publish(redis_client, other, '{"b":2}', event="update")
        third = publish(redis_client, channel, '"three"')
        await stream.wait_for_events(3)
    tag = channel_list_tag([channel, other]).decode()
    assert stream.raw == (
        f"retry: 3000\nid: {channel}/0-0,~{tag},1:0-0\nevent: sse.start\ndata: {{}}\n: connected\n\n".encode()
        + f'id: {channel}/{first},~{tag},1:0-0\ndata: {{"a":1}}\n\n'.encode()
        + f'id: {other}/{second},~{tag},0:{first}\nevent: update\ndata: {{"b":2}}\n\n'.encode()
        + f'id: {channel}/{third},~{tag},1:{second}\ndata: "three"\n\n'.encode()
    )
    assert [e.channel for e in stream.events] == [channel, other, channel]


async def test_path_and_query_channels_combine_without_duplicates(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    other = channel + "-b"
    async with open_stream(f"{sse_service.url}/sse/{channel}?channel={other}&channel={channel}") as stream:
        publish(redis_client, other, "1")
        publish(redis_client, channel, "2")
        events = await stream.wait_for_events(2)
    assert [(e.channel, e.data) for e in events] == [(other, "1"), (channel, "2")]


async def test_payload_edge_cases_arrive_as_published(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    payloads = [
        json.dumps({"text": "line one\nline two\r\nline three\rend"}),
        json.dumps({"text": "héllo ✓ 日本 \u2028 😀"}, ensure_ascii=False),
        '""',
        '{\n  "pretty": true\n}',
        json.dumps({"big": "x" * 60000}),
    ]
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        for payload in payloads:
            publish(redis_client, channel, payload)
        events = await stream.wait_for_events(len(payloads))
    assert [e.data for e in events] == [
        payloads[0],
        payloads[1],
        '""',
        '{\n  "pretty": true\n}',
        payloads[4],
    ]
    assert b"\r" not in stream.raw.split(b"data: ", 1)[1].split(b"\n\n")[0]


async def test_oversize_and_malformed_messages_are_dropped_and_others_still_delivered(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    rejected_before = (await scrape(sse_service))["sse_messages_rejected_total"]
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        redis_client.publish(f"sse:{{{channel}}}", "not an envelope")
        publish(redis_client, channel, json.dumps("x" * 70000))
        event_id = publish(redis_client, channel, '"after"')
        events = await stream.wait_for_events(1)
    assert [(e.id, e.data) for e in events] == [(f"{channel}/{event_id}", '"after"')]
    assert (await scrape(sse_service))["sse_messages_rejected_total"] == rejected_before + 2


async def test_idle_stream_gets_heartbeats(sse_service: SseService, channel: str) -> None:
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        await stream.wait_for_comment("ping", timeout=3)
    assert stream.retry == 3000
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["cache-control"] == "no-store"


async def test_bad_requests_get_a_clear_error(sse_service: SseService) -> None:
    async with httpx.AsyncClient(base_url=sse_service.url) as client:
        missing = await client.get("/sse/")
        invalid = await client.get("/sse/", params={"channel": ["ok", "not ok"]})
        too_many = await client.get("/sse/", params={"channel": [f"c{i}" for i in range(33)]})
        post = await client.post("/sse/news")
    assert (missing.status_code, "No channel given" in missing.text) == (400, True)
    assert (invalid.status_code, "'not ok'" in invalid.text) == (400, True)
    assert (too_many.status_code, "at most 32" in too_many.text) == (429, True)
    assert post.status_code == 405
    assert (await _ready(sse_service)) == 200


async def _ready(service: SseService) -> int:
    async with httpx.AsyncClient(base_url=service.url) as client:
        return (await client.get("/readyz")).status_code
