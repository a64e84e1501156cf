"""django_sse_push.publish.publish_on_commit(): checked now, sent only after a commit."""

from __future__ import annotations

import json
import logging

import pytest
import redis
from django.db import transaction
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from django_sse_push import keys
from django_sse_push.exceptions import InvalidChannelError, PayloadNotSerializableError
from django_sse_push.models import OutboxEvent
from django_sse_push.publish import publish_on_commit

pytestmark = pytest.mark.django_db(transaction=True)


def _stream(redis_client: redis.Redis, prefix: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return redis_client.xrange(keys.stream_key(prefix, "orders"))  # type: ignore[no-any-return]


def test_event_is_published_only_after_the_transaction_commits(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    with transaction.atomic():
        publish_on_commit("orders", {"id": 7}, event="update")
        assert _stream(redis_client, key_prefix) == []

    [(_, fields)] = _stream(redis_client, key_prefix)
    assert fields == {b"event": b"update", b"data": b'{"id":7}'}


def test_nothing_is_published_when_the_transaction_rolls_back(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_on_commit("orders", {"id": 7})
        raise RuntimeError("roll back")

    assert redis_client.keys(f"{key_prefix}*") == []


def test_outside_a_transaction_it_publishes_at_once(redis_client: redis.Redis, key_prefix: str) -> None:
    publish_on_commit("orders", 1)

    assert len(_stream(redis_client, key_prefix)) == 1


def test_bad_input_raises_at_the_call_site_not_at_commit() -> None:
    with transaction.atomic():
        with pytest.raises(InvalidChannelError):
            publish_on_commit("no spaces allowed", 1)
        with pytest.raises(PayloadNotSerializableError):
            publish_on_commit("orders", object())


def test_data_is_serialised_at_call_time_so_later_changes_do_not_leak(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    data = {"status": "paid"}
    with transaction.atomic():
        publish_on_commit("orders", data)
        data["status"] = "refunded"

    [(_, fields)] = _stream(redis_client, key_prefix)
    assert fields[b"data"] == b'{"status":"paid"}'


def test_a_fast_path_that_raises_after_the_commit_leaves_the_event_to_the_relay_without_a_500(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The fast path was registered as `on_commit(partial(...), robust=True)`: when it raised anything
    but a database or Redis error (here a stream length that is not a number, which only
    `manage.py check` names and gunicorn runs no checks), Django's robust handler itself failed on
    `partial.__qualname__`, and a request whose write had committed answered 500, so a retry
    duplicated it. Now the event waits in the outbox, the reason is logged once, and each such commit
    is counted."""
    settings.SSE_STREAM_MAXLEN = "lots"
    before = REGISTRY.get_sample_value("sse_publish_unsent_after_commit_total", {"reason": "error"}) or 0

    with caplog.at_level(logging.ERROR, logger="django_sse_push.publish"):
        for n in range(3):
            with transaction.atomic():
                publish_on_commit("orders", n)

    assert [json.loads(bytes(row.data)) for row in OutboxEvent.objects.all()] == [0, 1, 2]
    [logged] = [r for r in caplog.records if r.name == "django_sse_push.publish"]
    assert "not supported between" in logged.getMessage()
    after = REGISTRY.get_sample_value("sse_publish_unsent_after_commit_total", {"reason": "error"})
    assert after == before + 3
