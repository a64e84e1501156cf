"""No event lost: resume with Last-Event-ID, trimmed history, malformed ids."""

from __future__ import annotations

import httpx
import redis

from devstack.services import RedisServer, SseService
from tests.support.publish import ContinuousPublisher, publish, redis_at
from tests.support.sse import follow, open_stream


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events_then_live(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    ids = [publish(redis_client, channel, f'{{"n":{n}}}') for n in range(5)]
    headers = {"Last-Event-ID": f"{channel}/{ids[1]}"}
    async with open_stream(f"{sse_service.url}/sse/{channel}", headers=headers) as stream:
        await stream.wait_for_events(3)
        live = publish(redis_client, channel, '{"n":"live"}')
        events = await stream.wait_for_events(4)
    assert [e.id for e in events] == [f"{channel}/{i}" for i in [*ids[2:], live]]
    assert [e.data for e in events] == ['{"n":2}', '{"n":3}', '{"n":4}', '{"n":"live"}']


async def test_one_id_resumes_every_channel_of_a_connection(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    a, b = channel + ".a", channel + ".b"
    url = f"{sse_service.url}/sse/?channel={a}&channel={b}"
    async with open_stream(url) as stream:
        publish(redis_client, a, "0")
        publish(redis_client, b, "1")
        seen = await stream.wait_for_events(2)
    # The last id names both channels' positions: `<b>/<id>,~<tag>,0:<a's id>`.
    assert seen[-1].id.endswith(f",0:{seen[0].stream_id}")
    missed = [publish(redis_client, b, "2"), publish(redis_client, a, "3"), publish(redis_client, b, "4")]
    async with open_stream(url, headers={"Last-Event-ID": seen[-1].id}) as stream:
        events = await stream.wait_for_events(3)
    # In order per channel; across channels, ids (Redis's clock) give only the millisecond.
    assert [(e.data, e.stream_id) for e in events if e.channel == b] == [("2", missed[0]), ("4", missed[2])]
    assert [(e.data, e.stream_id) for e in events if e.channel == a] == [("3", missed[1])]


async def test_events_published_during_the_replay_arrive_exactly_once(
    sse_service: SseService, redis_server: RedisServer, redis_client: redis.Redis, channel: str
) -> None:
    first = publish(redis_client, channel, '"before"')
    publisher = ContinuousPublisher(redis_at(redis_server.port), [channel], count=300, rate=300)
    publisher.start()
    # Resume from the first event while the others are still being published, so replay and live overlap.
    followed = await follow(
        f"{sse_service.url}/sse/{channel}",
        lambda events: len(events) >= 300,
        timeout=10,
        last_event_id=f"{channel}/{first}",
    )
    publisher.join(5)
    assert [e.id for e in followed.events] == [f"{channel}/{i}" for i in publisher.published[channel]]


async def test_position_older_than_retention_gets_a_reset_event(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    first = publish(redis_client, channel, "1")
    # Retention of 10 events: the publish step trims the stream as it goes.
    newest = [publish(redis_client, channel, str(n), maxlen=10) for n in range(2, 40)][-1]
    headers = {"Last-Event-ID": f"{channel}/{first}"}
    async with open_stream(f"{sse_service.url}/sse/{channel}", headers=headers) as stream:
        await stream.wait_for_events(1)
        live = publish(redis_client, channel, '"live"')
        events = await stream.wait_for_events(2)
    reset = (
        f'id: {channel}/{newest}\nevent: reset\ndata: {{"channel":"{channel}","reason":"history trimmed"}}'
    )
    opening = f"retry: 3000\nid: {channel}/{first}\nevent: sse.start\ndata: {{}}\n: connected\n\n"
    assert stream.raw.startswith((opening + reset + "\n\n").encode())
    assert (events[1].id, events[1].data) == (f"{channel}/{live}", '"live"')


async def test_a_malformed_last_event_id_header_is_ignored(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    publish(redis_client, channel, '"old"')
    headers = {"Last-Event-ID": "something/else/entirely"}
    async with open_stream(f"{sse_service.url}/sse/{channel}", headers=headers) as stream:
        assert stream.response.status_code == 200
        publish(redis_client, channel, '"new"')
        events = await stream.wait_for_events(1)
    assert [e.data for e in events] == ['"new"']


async def test_a_malformed_last_event_id_parameter_is_a_400(sse_service: SseService, channel: str) -> None:
    async with httpx.AsyncClient(base_url=sse_service.url) as client:
        for bad in ["x", f"{channel}/", f"{channel}/12", "no such/1-0", f"{channel}/1-0-0"]:
            response = await client.get(f"/sse/{channel}", params={"lastEventId": bad})
            assert response.status_code == 400, bad
            assert "Invalid lastEventId" in response.text


async def test_the_header_wins_over_a_stale_last_event_id_parameter(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Regression: a browser's own reconnect resends the first URL (stale `lastEventId`) with the
    newest id in the header; preferring the parameter replayed events the page already had."""
    ids = [publish(redis_client, channel, str(n)) for n in range(4)]
    url = f"{sse_service.url}/sse/{channel}?lastEventId={channel}/{ids[0]}"
    async with open_stream(url, headers={"Last-Event-ID": f"{channel}/{ids[2]}"}) as stream:
        events = await stream.wait_for_events(1)
    assert [e.data for e in events] == ["3"]


async def test_a_browser_reconnecting_before_its_first_event_loses_nothing(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Regression: a stream opened with `retry:` and `: connected` but no `id:`, so a browser whose
    connection dropped before its first event had no Last-Event-ID to send and started again at the
    newest event, losing what was published while it was away. The opening now carries each channel's
    start position, which sets the browser's last event id, under a type pages do not listen to."""
    other = channel + ".b"
    publish(redis_client, channel, '"before"')
    url = f"{sse_service.url}/sse/?channel={channel}&channel={other}"
    async with open_stream(url) as first:
        pass
    assert first.events == []
    missed = [publish(redis_client, channel, '"a"'), publish(redis_client, other, '"b"')]
    followed = await follow(
        url, lambda events: len(events) >= 2, timeout=5, last_event_id=first.last_event_id
    )
    assert [(e.channel, e.stream_id) for e in followed.events] == [(channel, missed[0]), (other, missed[1])]


async def test_an_id_of_stream_1_naming_every_channel_still_resumes_them_all(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Stream 2 names a connection's other channels by index; a client holding an id from before
    (`<channel>/<id>,<other channel>/<id>`) still resumes every channel from it."""
    other = channel + ".b"
    seen = [publish(redis_client, channel, '"a0"'), publish(redis_client, other, '"b0"')]
    missed = [publish(redis_client, other, '"b1"'), publish(redis_client, channel, '"a1"')]
    url = f"{sse_service.url}/sse/?channel={channel}&channel={other}"
    async with open_stream(
        url, headers={"Last-Event-ID": f"{other}/{seen[1]},{channel}/{seen[0]}"}
    ) as stream:
        events = await stream.wait_for_events(2)
    assert sorted((e.channel, e.stream_id) for e in events) == sorted(
        [(other, missed[0]), (channel, missed[1])]
    )
