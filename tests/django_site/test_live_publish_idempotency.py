"""publish(idempotency_key=...): a repeat returns the first id and publishes nothing."""

from __future__ import annotations

import time

import pytest
import redis
from pytest_django.fixtures import Settings

from django_sse_push import keys
from django_sse_push.exceptions import (
    InvalidIdempotencyKeyError,
)
from django_sse_push.publish import publish
from tests.support.publish import publish as publish_with_five_arguments


def test_a_repeated_key_returns_the_first_id_and_publishes_nothing(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(keys.pubsub_channel(key_prefix, "orders"))
        assert pubsub.get_message(timeout=5) is None
        first = publish("orders", {"n": 1}, idempotency_key="order-1-paid")
        again = publish("orders", {"n": 1}, idempotency_key="order-1-paid")
        messages = [pubsub.get_message(timeout=0.5), pubsub.get_message(timeout=0.5)]

    assert again == first
    assert [m["data"] for m in messages if m is not None] == [f'v1\n{first}\n\n{{"n":1}}'.encode()]
    assert redis_client.xlen(keys.stream_key(key_prefix, "orders")) == 1


def test_a_key_is_remembered_per_channel(redis_client: redis.Redis, key_prefix: str) -> None:
    publish("a", 1, idempotency_key="k")
    publish("b", 1, idempotency_key="k")

    assert redis_client.xlen(keys.stream_key(key_prefix, "a")) == 1
    assert redis_client.xlen(keys.stream_key(key_prefix, "b")) == 1


def test_keys_are_forgotten_after_the_idempotency_time(
    settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings.SSE_IDEMPOTENCY_SECONDS = 1
    first = publish("orders", 1, idempotency_key="old")
    remembered = keys.idempotency_key(key_prefix, "orders")
    times = keys.idempotency_times_key(key_prefix, "orders")
    # An idle channel's memory expires as a whole.
    assert 0 < redis_client.pttl(remembered) <= 1000 and 0 < redis_client.pttl(times) <= 1000
    time.sleep(1.1)

    publish("orders", 2, idempotency_key="new")

    # A busy one's forgets the old keys as new ones come.
    assert redis_client.hkeys(remembered) == [b"new"] and redis_client.zrange(times, 0, -1) == [b"new"]
    assert publish("orders", 1, idempotency_key="old") != first


def test_without_a_key_nothing_is_remembered_and_five_arguments_still_work(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    publish("orders", 1)
    event_id = publish_with_five_arguments(redis_client, "orders", "2", prefix=key_prefix)

    assert redis_client.xrevrange(keys.stream_key(key_prefix, "orders"), count=1)[0][0] == event_id.encode()
    assert not redis_client.exists(keys.idempotency_key(key_prefix, "orders"))


@pytest.mark.parametrize("key", ["", "has space", "é", "a" * 129, 42])
def test_an_invalid_key_is_refused_and_nothing_is_written(
    key: object, redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(InvalidIdempotencyKeyError, match="idempotency key"):
        publish("orders", 1, idempotency_key=key)  # type: ignore[arg-type]

    assert redis_client.keys(f"{key_prefix}*") == []


def test_idempotency_memory_is_bounded_per_channel_not_by_the_publish_rate(
    settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Every key was kept for SSE_IDEMPOTENCY_SECONDS whatever the rate: about 262 bytes an event,
    1.8 GB an hour at 1,900 events/s on one channel. Now a channel keeps only its newest keys (as
    many as its stream keeps events, at least ten relay batches), which covers every repeat a sender
    can still make; the newest are still recognised."""
    settings.SSE_STREAM_MAXLEN = 50
    settings.SSE_OUTBOX_BATCH_SIZE = 3
    ids = [publish("orders", n, idempotency_key=f"k{n}") for n in range(80)]

    assert redis_client.hlen(keys.idempotency_key(key_prefix, "orders")) == 50
    assert redis_client.zcard(keys.idempotency_times_key(key_prefix, "orders")) == 50
    assert publish("orders", 79, idempotency_key="k79") == ids[79]
    assert publish("orders", 30, idempotency_key="k30") == ids[30]
