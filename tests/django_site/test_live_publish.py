"""django_sse_push.publish.publish(): what lands in Redis, and what is refused."""

from __future__ import annotations

import datetime
import decimal
import time

import pytest
import redis
from pytest_django.fixtures import Settings

from django_sse_push import keys
from django_sse_push.exceptions import (
    InvalidChannelError,
    InvalidEventTypeError,
    PayloadNotSerializableError,
    PayloadTooLargeError,
    PublishBackendError,
    PublishError,
)
from django_sse_push.publish import publish


def _id(event_id: str | bytes) -> tuple[int, int]:
    text = event_id.decode() if isinstance(event_id, bytes) else event_id
    ms, seq = text.split("-")
    return int(ms), int(seq)


def test_publish_appends_event_and_data_to_the_channel_stream(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    event_id = publish("demo", {"text": "héllo", "n": [1, 2]}, event="update")

    entries = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert entries == [
        (event_id.encode(), {b"event": b"update", b"data": '{"text":"héllo","n":[1,2]}'.encode()})
    ]


def test_publish_returns_an_id_in_ms_seq_form_close_to_now() -> None:
    before = int(time.time() * 1000)
    ms, seq = _id(publish("demo", 1))
    assert before - 1000 <= ms <= int(time.time() * 1000) + 1000
    assert seq >= 0


def test_subscriber_receives_the_exact_v1_envelope(redis_client: redis.Redis, key_prefix: str) -> None:
    with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(keys.pubsub_channel(key_prefix, "demo"))
        assert pubsub.get_message(timeout=5) is None  # consumes the subscribe confirmation
        named = publish("demo", {"a": "ü"}, event="notice")
        default = publish("demo", [1, None, True])
        first = pubsub.get_message(timeout=5)
        second = pubsub.get_message(timeout=5)

    assert first is not None and second is not None
    assert first["data"] == f'v1\n{named}\nnotice\n{{"a":"ü"}}'.encode()
    assert second["data"] == f"v1\n{default}\n\n[1,null,true]".encode()


def test_event_message_is_sent_as_the_default_type_with_an_empty_event_field(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    publish("demo", 1, event="message")
    publish("demo", 2, event=None)
    publish("demo", 3, event="")

    entries = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert [fields[b"event"] for _, fields in entries] == [b"", b"", b""]


def test_ids_strictly_increase_per_channel() -> None:
    ids = [(i % 2, _id(publish("left" if i % 2 else "right", i))) for i in range(200)]

    for side in (0, 1):
        positions = [position for s, position in ids if s == side]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)


def test_data_is_compact_json_from_djangos_encoder(redis_client: redis.Redis, key_prefix: str) -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    publish("demo", {"when": when, "price": decimal.Decimal("1.50")})

    [(_, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert fields[b"data"] == b'{"when":"2024-05-06T07:08:09Z","price":"1.50"}'


def test_stream_keeps_the_newest_maxlen_events_and_records_what_it_trimmed(
    settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings.SSE_STREAM_MAXLEN = 200
    ids = [publish("busy", i) for i in range(600)]

    stream = keys.stream_key(key_prefix, "busy")
    kept = [entry_id.decode() for entry_id, _ in redis_client.xrange(stream)]
    # Trimmed a tenth at a time: between 90% and 100% of the maximum stays.
    assert 180 <= len(kept) <= 200
    assert kept == ids[-len(kept) :]
    assert redis_client.get(keys.trimmed_key(key_prefix, "busy")) == ids[-len(kept) - 1].encode()


def test_an_id_stays_above_the_streams_newest_when_it_is_ahead_of_the_clock(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    publish("demo", "before")
    future_ms = int(time.time() * 1000) + 3_600_000
    stream = keys.stream_key(key_prefix, "demo")
    redis_client.xadd(stream, {"event": "", "data": "0"}, id=f"{future_ms}-5")

    event_id = publish("demo", "after")

    assert _id(event_id) > (future_ms, 5)
    assert redis_client.xrevrange(stream, count=1)[0] == (
        event_id.encode(),
        {b"event": b"", b"data": b'"after"'},
    )


@pytest.mark.parametrize(
    "channel",
    ["", "-dash-first", "_under", "has space", "a/b", "x{y}", "ümlaut", "demo\n", "a" * 129, 42],
)
def test_invalid_channel_is_refused_and_nothing_is_written(
    channel: object, redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(InvalidChannelError, match="channel") as caught:
        publish(channel, {"x": 1})  # type: ignore[arg-type]

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PublishError)
    assert redis_client.keys(f"{key_prefix}*") == []


def test_longest_valid_channel_is_accepted() -> None:
    assert publish("a" + "b.c_d-" * 21 + "x", 1)


@pytest.mark.parametrize("event", ["1st", "-x", "has space", "a" * 65, "ev\n", "ev:x"])
def test_invalid_event_type_is_refused_and_nothing_is_written(
    event: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(InvalidEventTypeError, match="event type") as caught:
        publish("demo", {"x": 1}, event=event)

    assert isinstance(caught.value, ValueError)
    assert redis_client.keys(f"{key_prefix}*") == []


@pytest.mark.parametrize(
    "data",
    [object(), {"nan": float("nan")}, {"inf": float("inf")}, "\ud800", {1, 2}],
    ids=["object", "nan", "infinity", "lone-surrogate", "set"],
)
def test_unserialisable_data_is_refused_and_nothing_is_written(
    data: object, redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(PayloadNotSerializableError, match="JSON") as caught:
        publish("demo", data)

    assert isinstance(caught.value, TypeError)
    assert redis_client.keys(f"{key_prefix}*") == []


def test_payload_limit_counts_utf8_bytes_of_the_json_text(
    settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings.SSE_MAX_PAYLOAD_BYTES = 10
    publish("demo", "éééé")  # '"éééé"' is 6 characters but exactly 10 bytes

    with pytest.raises(PayloadTooLargeError, match=r"11 bytes.*limit of 10"):
        publish("demo", "ééééa")

    assert redis_client.xlen(keys.stream_key(key_prefix, "demo")) == 1


def test_redis_failure_is_a_publish_backend_error(settings: Settings, unreachable_redis_url: str) -> None:
    settings.SSE_REDIS_URL = unreachable_redis_url

    with pytest.raises(PublishBackendError, match="could not publish to 'demo'"):
        publish("demo", 1)


def test_publish_reloads_the_script_after_redis_forgets_it(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    publish("demo", 1)
    redis_client.script_flush()  # what a Redis restart or failover does to the script cache

    event_id = publish("demo", 2)

    assert redis_client.xrevrange(keys.stream_key(key_prefix, "demo"), count=1)[0][0] == event_id.encode()
