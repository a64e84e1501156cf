"""python's httpx-sse, a client that hands over every block: what it makes of a stream's opening."""

from __future__ import annotations

import httpx
import redis
from httpx_sse import aconnect_sse

from devstack.services import SseService
from tests.support.publish import publish


async def test_httpx_sse_sees_the_opening_under_the_services_own_type_then_the_events(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """The opening block used to be `id:` alone, which httpx-sse yields as a `message` with empty data
    (not JSON): a loop over `message` events choked on it. It is now `sse.start`, skipped by type."""
    first = publish(redis_client, channel, '"before"')
    async with (
        httpx.AsyncClient(base_url=sse_service.url, timeout=httpx.Timeout(5, read=10)) as client,
        aconnect_sse(client, "GET", f"/sse/{channel}") as source,
    ):
        events = source.aiter_sse()
        opening = await anext(events)
        assert (opening.event, opening.data, opening.id, opening.retry) == (
            "sse.start",
            "{}",
            f"{channel}/{first}",
            3000,
        )
        sent = publish(redis_client, channel, '"after"')
        event = await anext(events)
    assert (event.event, event.data, event.id) == ("message", '"after"', f"{channel}/{sent}")
