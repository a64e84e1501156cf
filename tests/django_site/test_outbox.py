"""The outbox behind publish_on_commit(), on SQLite and on PostgreSQL, against a real Redis.

What a user of the site would see: the events in the channel's Redis stream (what every follower
gets), and what is left in the outbox table.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import redis
from django.db import connections, transaction

from django_sse_push import keys, outbox
from django_sse_push._sending import Message, Sent
from django_sse_push.models import OutboxEvent
from django_sse_push.outbox import send_channel, send_pending
from django_sse_push.publish import publish, publish_on_commit
from tests.django_site.conftest import RedisAway

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgres"])


def stream(redis_client: redis.Redis, prefix: str, channel: str) -> list[Any]:
    """The channel's events as followers get them: decoded JSON, in order."""
    return [
        json.loads(fields[b"data"]) for _, fields in redis_client.xrange(keys.stream_key(prefix, channel))
    ]


def pending(database: str) -> list[tuple[str, Any]]:
    return [(row.channel, json.loads(bytes(row.data))) for row in OutboxEvent.objects.using(database)]


def test_a_commit_publishes_the_event_and_empties_the_outbox(
    database: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    with transaction.atomic(using=database):
        publish_on_commit("orders", {"id": 7}, event="update", using=database)
        assert pending(database) == [("orders", {"id": 7})]
        assert stream(redis_client, key_prefix, "orders") == []

    [(_, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "orders"))
    assert fields == {b"event": b"update", b"data": b'{"id":7}'}
    assert pending(database) == []


def test_a_rollback_publishes_nothing_and_keeps_nothing(
    database: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic(using=database):
        publish_on_commit("orders", {"id": 7}, using=database)
        raise RuntimeError("roll back")

    assert pending(database) == []
    assert send_pending(using=database, limit=10).handled == 0
    assert redis_client.keys(f"{key_prefix}*") == []


def test_redis_down_at_commit_raises_nothing_and_the_relay_sends_the_event_later(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """Outside an atomic block, publish_on_commit sent at once and raised PublishBackendError into the
    caller, a post_save receiver: the site answered 500 and the event was lost. Now it is kept."""
    with redis_away():
        publish_on_commit("orders", {"id": 1}, using=database)
        assert pending(database) == [("orders", {"id": 1})]

    progress = send_pending(using=database, limit=10)

    assert (progress.sent, progress.duplicates, progress.error) == (1, 0, None)
    assert stream(redis_client, key_prefix, "orders") == [{"id": 1}]
    assert pending(database) == []


def test_the_fast_path_never_overtakes_older_pending_events_of_its_channel(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    with redis_away():
        for n in range(3):
            publish_on_commit("orders", n, using=database)
        publish_on_commit("other", "x", using=database)

    publish_on_commit("orders", 3, using=database)

    assert stream(redis_client, key_prefix, "orders") == [0, 1, 2, 3]
    # Another channel's backlog is the relay's.
    assert pending(database) == [("other", "x")]


def test_a_row_sent_before_its_sender_died_is_not_published_again(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    with redis_away():
        publish_on_commit("orders", "once", using=database)
        [row] = OutboxEvent.objects.using(database)
    # What a sender killed between publishing and deleting the row leaves behind.
    first = publish("orders", "once", idempotency_key=row.idempotency_key)

    progress = send_pending(using=database, limit=10)

    assert (progress.sent, progress.duplicates) == (0, 1)
    assert [
        entry_id.decode() for entry_id, _ in redis_client.xrange(keys.stream_key(key_prefix, "orders"))
    ] == [first]
    assert pending(database) == []


def test_a_pass_gives_each_channel_an_equal_share_of_its_batch_in_order(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    with redis_away():
        for n in range(7):
            publish_on_commit("b" if n in (1, 3) else "a", n, using=database)

    first = send_pending(using=database, limit=4)
    assert (first.sent, first.more) == (4, True)
    assert stream(redis_client, key_prefix, "a") == [0, 2]
    assert stream(redis_client, key_prefix, "b") == [1, 3]
    assert send_pending(using=database, limit=4).sent == 3
    assert stream(redis_client, key_prefix, "a") == [0, 2, 4, 5, 6]


def test_text_data_is_stored_and_sent_as_it_is(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    fragment = '<li id="item-1">héllo\n<b>board</b></li>'
    with redis_away():
        publish_on_commit("fragments", fragment, event="item", as_text=True, using=database)
    send_pending(using=database, limit=10)

    [(_, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "fragments"))
    assert fields == {b"event": b"item", b"data": fragment.encode()}


def test_a_channel_another_sender_owns_is_skipped_not_overtaken(
    redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """PostgreSQL: a sender owns a channel while it locks the channel's oldest row. Another sender
    must skip the whole channel, not take its next row (which would send event 1 before event 0)."""
    with redis_away():
        for n in range(3):
            publish_on_commit("owned", n, using="postgres")
        publish_on_commit("free", "f", using="postgres")
    head = OutboxEvent.objects.using("postgres").filter(channel="owned").first()
    assert head is not None
    params = connections["postgres"].get_connection_params()
    with psycopg.connect(**params) as other_sender, other_sender.transaction():
        other_sender.execute("SELECT id FROM django_sse_push_outboxevent WHERE id = %s FOR UPDATE", [head.pk])

        assert send_pending(using="postgres", limit=10).sent == 1
        assert send_channel("owned", using="postgres", limit=10).sent == 0
        assert stream(redis_client, key_prefix, "owned") == []

    assert send_pending(using="postgres", limit=10).sent == 3
    assert stream(redis_client, key_prefix, "owned") == [0, 1, 2]
    assert stream(redis_client, key_prefix, "free") == ["f"]


def test_a_channel_redis_refuses_waits_without_holding_up_the_others(
    database: str, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """One channel's error answer (here its stream key holds a string) stopped every channel's events."""
    redis_client.set(keys.stream_key(key_prefix, "broken"), "not a stream")
    with redis_away():
        publish_on_commit("broken", 1, using=database)
        publish_on_commit("fine", 2, using=database)

    progress = send_pending(using=database, limit=10)

    assert progress.sent == 1 and progress.error is None and list(progress.refused) == ["broken"]
    assert stream(redis_client, key_prefix, "fine") == [2]
    assert pending(database) == [("broken", 1)]


def in_thread(target: Callable[..., object], *args: object, **kwargs: object) -> threading.Thread:
    """Runs `target` in a thread of its own, as another process's sender would, with its own
    database connection, closed when done."""

    def run() -> None:
        try:
            target(*args, **kwargs)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_backlog_being_sent_holds_no_lock_on_other_channels(
    redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a relay pass locked the heads of up to 100 channels and held them while it spent
    its whole batch on the channel with the oldest rows; every other channel's fast path found its
    head locked and skipped, leaving a fresh event to a later pass (13.8 s median behind 20,000
    rows). Now a sender holds one channel at a time: while a backlog's batch is being sent, another
    channel's commit goes out at once, its leftover first."""
    with redis_away():
        for n in range(30):
            publish_on_commit("backlog", n, using="postgres")
        publish_on_commit("fresh", "leftover", using="postgres")
    sending = threading.Event()
    done = threading.Event()
    original = outbox.send

    def slow_send(message: Message, key: str | None = None) -> Sent:
        if message.channel == "backlog":
            sending.set()
            done.wait(5)
        return original(message, key)

    monkeypatch.setattr(outbox, "send", slow_send)
    relay = in_thread(send_pending, using="postgres", limit=100)
    try:
        assert sending.wait(5)
        publish_on_commit("fresh", "new", using="postgres")
        assert stream(redis_client, key_prefix, "fresh") == ["leftover", "new"]
    finally:
        done.set()
        relay.join()


def test_a_fast_path_waits_for_the_sender_holding_its_channel_rather_than_strand_its_event(
    redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """PostgreSQL: a commit whose channel another sender held (having read the channel's rows before
    this event committed) skipped it, and its event waited for the relay's next pass."""
    with redis_away():
        publish_on_commit("orders", 0, using="postgres")
    head = OutboxEvent.objects.using("postgres").get()
    params = connections["postgres"].get_connection_params()
    with psycopg.connect(**params) as other_sender:
        with other_sender.transaction():
            other_sender.execute(
                "SELECT id FROM django_sse_push_outboxevent WHERE id = %s FOR UPDATE", [head.pk]
            )
            committing = in_thread(publish_on_commit, "orders", 1, using="postgres")
            # The other sender is still busy when the commit's fast path finds the channel held.
            time.sleep(0.3)
            other_sender.execute("DELETE FROM django_sse_push_outboxevent WHERE id = %s", [head.pk])
        committing.join(5)

    assert stream(redis_client, key_prefix, "orders") == [1]
    assert pending("postgres") == []
