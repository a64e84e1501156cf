"""Tickets, revocation and limits, against the SSE service itself (tickets written as Django writes them).

The same matrix through nginx, with tickets from Django, is in test_security_through_nginx.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis

from devstack import tickets
from devstack.processes import free_port, wait_until
from devstack.services import RedisServer, SseService, http_status
from tests.conftest import TEST_SSE_ENV
from tests.integration.probes import scrape
from tests.support.publish import publish
from tests.support.sse import open_stream


@pytest.fixture(scope="module")
def limited_sse(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SseService]:
    env = {**TEST_SSE_ENV, "SSE_MAX_CONNECTIONS_PER_USER": "2", "SSE_MAX_CONNECTIONS_PER_ADDRESS": "3"}
    service = SseService(tmp_path_factory.mktemp("limited"), redis_server.url, free_port(), env=env)
    yield service.start()
    service.stop()


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"sse_ticket={token}"}


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url, headers=headers)
    return response.status_code, response.text


async def test_public_channels_need_no_ticket_and_ignore_a_bad_one(
    sse_service: SseService, channel: str
) -> None:
    async with open_stream(f"{sse_service.url}/sse/{channel}", headers=cookie("garbage")) as stream:
        assert stream.response.status_code == 200


async def test_a_private_channel_without_a_ticket_is_a_401_naming_it(
    sse_service: SseService, channel: str, private_channel: str
) -> None:
    url = f"{sse_service.url}/sse/?channel={channel}&channel={private_channel}"
    assert await refusal(url) == (401, f"a ticket is required for private channel {private_channel}\n")


async def test_an_unknown_ticket_is_a_401(sse_service: SseService, private_channel: str) -> None:
    unknown = "A" * 43
    url = f"{sse_service.url}/sse/{private_channel}"
    assert await refusal(url, cookie(unknown)) == (401, "ticket expired or unknown\n")
    assert await refusal(f"{url}?ticket={unknown}") == (401, "ticket expired or unknown\n")


async def test_a_ticket_in_the_cookie_or_the_query_opens_the_stream_and_events_flow(
    sse_service: SseService, redis_client: redis.Redis, private_channel: str, user_id: str
) -> None:
    token = tickets.issue(redis_client, [private_channel], user=user_id)
    url = f"{sse_service.url}/sse/{private_channel}"
    async with (
        open_stream(url, headers=cookie(token)) as by_cookie,
        open_stream(f"{url}?ticket={token}") as by_query,
    ):
        event_id = publish(redis_client, private_channel, '"secret"')
        for stream in (by_cookie, by_query):
            (event,) = await stream.wait_for_events(1)
            assert (event.id, event.data) == (f"{private_channel}/{event_id}", '"secret"')


async def test_a_ticket_without_the_channel_is_a_403_naming_it(
    sse_service: SseService, redis_client: redis.Redis, private_channel: str, user_id: str
) -> None:
    token = tickets.issue(redis_client, [private_channel], user=user_id)
    other = private_channel + ".other"
    url = f"{sse_service.url}/sse/?channel={private_channel}&channel={other}"
    assert await refusal(url, cookie(token)) == (403, f"the ticket does not allow private channel {other}\n")


async def test_an_expired_ticket_is_a_401(
    sse_service: SseService, redis_client: redis.Redis, private_channel: str
) -> None:
    token = tickets.issue(redis_client, [private_channel])
    redis_client.pexpire(tickets.ticket_key(token), 1)
    await asyncio.sleep(0.05)
    assert await refusal(f"{sse_service.url}/sse/{private_channel}", cookie(token)) == (
        401,
        "ticket expired or unknown\n",
    )


async def test_revoking_a_user_closes_that_users_streams_within_seconds(
    sse_service: SseService, redis_client: redis.Redis, private_channel: str, user_id: str, channel: str
) -> None:
    other_user = user_id + "x"
    revoked_before = (await scrape(sse_service))['sse_streams_ended_total{reason="revoked"}']
    mine = tickets.issue(redis_client, [private_channel], user=user_id)
    theirs = tickets.issue(redis_client, [private_channel], user=other_user)
    url = f"{sse_service.url}/sse/?channel={private_channel}&channel={channel}"
    async with (
        open_stream(url, headers=cookie(mine)) as revoked,
        open_stream(url, headers=cookie(theirs)) as kept,
        open_stream(f"{sse_service.url}/sse/{channel}", headers=cookie(mine)) as public_only,
    ):
        tickets.revoke_user(redis_client, user_id)
        await revoked.read_to_end(timeout=3)
        publish(redis_client, channel, '"still here"')
        await kept.wait_for_events(1)
        # A public-only stream never used the ticket, so it is not the user's to lose.
        await public_only.wait_for_events(1)
        assert not kept.ended and not public_only.ended
    assert (await scrape(sse_service))['sse_streams_ended_total{reason="revoked"}'] == revoked_before + 1


async def test_the_per_user_limit_is_a_429_and_a_leaving_client_frees_its_slot(
    limited_sse: SseService, redis_client: redis.Redis, private_channel: str, user_id: str
) -> None:
    url = f"{limited_sse.url}/sse/{private_channel}"
    first_ticket = tickets.issue(redis_client, [private_channel], user=user_id)
    second_ticket = tickets.issue(redis_client, [private_channel], user=user_id)

    # Different addresses, so only the per-user limit (2) can bite.
    def headers(token: str, n: int) -> dict[str, str]:
        return {**cookie(token), "X-Forwarded-For": f"198.51.100.{n}"}

    async with AsyncExitStack() as streams:
        first = await streams.enter_async_context(open_stream(url, headers=headers(first_ticket, 1)))
        await streams.enter_async_context(open_stream(url, headers=headers(second_ticket, 2)))
        status, body = await refusal(url, headers(first_ticket, 3))
        assert (status, body) == (429, "Too many connections for this ticket's user: at most 2 at a time\n")
        await first.response.aclose()
        await eventually_admitted(url, headers(second_ticket, 4))


async def test_the_per_address_limit_uses_x_forwarded_for_from_a_trusted_proxy(
    limited_sse: SseService, channel: str
) -> None:
    url = f"{limited_sse.url}/sse/{channel}"
    crowd = {"X-Forwarded-For": "203.0.113.5"}
    async with AsyncExitStack() as streams:
        opened = [await streams.enter_async_context(open_stream(url, headers=crowd)) for _ in range(3)]
        assert await refusal(url, crowd) == (
            429,
            "Too many connections from 203.0.113.5: at most 3 at a time\n",
        )
        async with open_stream(url, headers={"X-Forwarded-For": "203.0.113.6"}) as elsewhere:
            assert elsewhere.response.status_code == 200
        await opened[0].response.aclose()
        await eventually_admitted(url, crowd)


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    redis_server: RedisServer, tmp_path: Path, channel: str
) -> None:
    env = {**TEST_SSE_ENV, "SSE_TRUSTED_PROXIES": "10.0.0.0/8", "SSE_MAX_CONNECTIONS_PER_ADDRESS": "1"}
    service = SseService(tmp_path, redis_server.url, free_port(), env=env).start()
    try:
        url = f"{service.url}/sse/{channel}"
        async with open_stream(url, headers={"X-Forwarded-For": "203.0.113.1"}):
            status, body = await refusal(url, {"X-Forwarded-For": "203.0.113.2"})
        assert (status, body) == (429, "Too many connections from 127.0.0.1: at most 1 at a time\n")
    finally:
        service.stop()


async def test_after_a_redis_outage_ticketed_streams_are_closed_and_must_show_their_ticket_again(
    tmp_path: Path, channel: str, private_channel: str, user_id: str
) -> None:
    """A revocation published while the subscription was down would be lost, so none is trusted."""
    own_redis = RedisServer(tmp_path, free_port()).start()
    service = SseService(tmp_path, own_redis.url, free_port(), env=TEST_SSE_ENV).start()
    try:
        with own_redis.client() as client:
            token = tickets.issue(client, [private_channel], user=user_id)
        async with (
            open_stream(f"{service.url}/sse/{private_channel}", headers=cookie(token)) as ticketed,
            open_stream(f"{service.url}/sse/{channel}") as public,
        ):
            own_redis.stop()
            status, body = await refusal(f"{service.url}/sse/{private_channel}", cookie(token))
            assert (status, body) == (503, "tickets cannot be checked right now; retry later\n")
            own_redis.start()
            await ticketed.read_to_end(timeout=15)
            assert not public.ended
        assert (await scrape(service))['sse_streams_ended_total{reason="control channel resubscribed"}'] == 1
    finally:
        service.stop()
        own_redis.stop()


async def test_a_stream_opened_as_redis_comes_back_is_not_closed_when_the_control_channel_returns(
    tmp_path: Path, private_channel: str, user_id: str
) -> None:
    """Regression: a page loaded during a Redis outage got its ticket once Redis was back, and the
    service closed its new stream 1 ms after opening it (`control channel resubscribed`): every
    ticketed stream registered before the control channel was subscribed again was closed, this one
    too, although its ticket, read after Redis was back, could not have been revoked unheard. Its
    browser reconnected and, with live.js then, lost what was published meanwhile."""
    own_redis = RedisServer(tmp_path, free_port()).start()
    service = SseService(tmp_path, own_redis.url, free_port(), env=TEST_SSE_ENV).start()
    try:
        own_redis.stop()
        wait_until(lambda: http_status(service.port, "/readyz") == 503, 10, "the service noticing")
        await asyncio.sleep(4)  # long enough that the subscription's next try is seconds away
        own_redis.start()
        with own_redis.client() as client:
            token = tickets.issue(client, [private_channel], user=user_id)
        async with AsyncExitStack() as streams:
            # The first ticket read may meet the command client's connection from before: a 503.
            for _ in range(20):
                stream = await streams.enter_async_context(
                    open_stream(f"{service.url}/sse/{private_channel}", headers=cookie(token), timeout=15)
                )
                if stream.response.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert stream.response.status_code == 200
            wait_until(lambda: http_status(service.port, "/readyz") == 200, 15, "the subscription back")
            with own_redis.client() as client:
                sent = publish(client, private_channel, '"after the outage"')
            events = await stream.wait_for_events(1, timeout=5)
            assert [(e.stream_id, e.data) for e in events] == [(sent, '"after the outage"')]
            assert not stream.ended
        metrics = await scrape(service)
        assert metrics['sse_streams_ended_total{reason="control channel resubscribed"}'] == 0
    finally:
        service.stop()
        own_redis.stop()


async def eventually_admitted(url: str, headers: dict[str, str], timeout: float = 3.0) -> None:
    """The slot is freed when the service notices the client left, a moment after it closed."""
    async with asyncio.timeout(timeout):
        while True:
            async with open_stream(url, headers=headers) as stream:
                if stream.response.status_code == 200:
                    return
            await asyncio.sleep(0.05)
