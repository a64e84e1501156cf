"""The public/private rule and ticket lookup, against a real Redis."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from devstack import tickets
from devstack.services import RedisServer
from sse_service.auth import check_ticket, ticket_from, ticket_key
from sse_service.exceptions import Refused


@pytest.fixture
async def aclient(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def test_ticket_key_holds_the_sha256_of_the_token_not_the_token() -> None:
    key = ticket_key("sse", "abc")
    assert key == "sse:ticket:" + hashlib.sha256(b"abc").hexdigest()
    assert "abc" not in key.removeprefix("sse:ticket:")


def test_the_query_parameter_wins_over_the_cookie() -> None:
    assert ticket_from({"ticket": "q"}, {"sse_ticket": "c"}) == "q"
    assert ticket_from({}, {"sse_ticket": "c"}) == "c"
    assert ticket_from({"ticket": ""}, {}) is None


async def test_no_ticket_is_a_401_naming_the_channel(aclient: aioredis.Redis) -> None:
    with pytest.raises(Refused) as refused:
        await check_ticket(aclient, "sse", None, ["user.1"])
    assert (refused.value.status, refused.value.message) == (
        401,
        "a ticket is required for private channel user.1\n",
    )


@pytest.mark.parametrize("token", ["short", "x" * 200, "has space" * 3, "nope-" * 5])
async def test_malformed_or_unknown_tokens_are_a_401(aclient: aioredis.Redis, token: str) -> None:
    with pytest.raises(Refused) as refused:
        await check_ticket(aclient, "sse", token, ["user.1"])
    assert (refused.value.status, refused.value.message) == (401, "ticket expired or unknown\n")


async def test_a_ticket_grants_its_channels_and_names_the_first_it_lacks(
    aclient: aioredis.Redis, redis_client: redis.Redis, user_id: str
) -> None:
    token = tickets.issue(redis_client, ["user.a", "public.x"], user=user_id)
    grant = await check_ticket(aclient, "sse", token, ["user.a"])
    assert grant.user == user_id
    assert grant.holder == f"user:{user_id}"
    with pytest.raises(Refused) as refused:
        await check_ticket(aclient, "sse", token, ["user.a", "user.b", "user.c"])
    assert (refused.value.status, refused.value.message) == (
        403,
        "the ticket does not allow private channel user.b\n",
    )


async def test_an_anonymous_ticket_is_limited_as_its_own_holder(
    aclient: aioredis.Redis, redis_client: redis.Redis
) -> None:
    token = tickets.issue(redis_client, ["guest.room"])
    grant = await check_ticket(aclient, "sse", token, ["guest.room"])
    assert grant.user == ""
    assert grant.holder == "ticket:" + hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("stored", [b"not json", b"[]", b'{"user": 1, "channels": []}', b'{"user": ""}'])
async def test_a_malformed_ticket_counts_as_unknown(
    aclient: aioredis.Redis, redis_client: redis.Redis, stored: bytes
) -> None:
    token = tickets.issue(redis_client, ["user.a"])
    redis_client.set(tickets.ticket_key(token), stored)
    with pytest.raises(Refused) as refused:
        await check_ticket(aclient, "sse", token, ["user.a"])
    assert refused.value.status == 401


async def test_an_unreachable_redis_is_a_503_not_a_crash(unreachable_redis: aioredis.Redis) -> None:
    with pytest.raises(Refused) as refused:
        await check_ticket(unreachable_redis, "sse", "a" * 43, ["user.a"])
    assert refused.value.status == 503
