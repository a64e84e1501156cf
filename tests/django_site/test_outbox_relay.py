"""The relay's passes: backoff while Redis is away, what its metrics show, one log line per outage edge."""

from __future__ import annotations

import logging

import pytest
import redis

from django_sse_push import keys
from django_sse_push.publish import publish_on_commit
from django_sse_push.relay import MAX_BACKOFF_SECONDS, Relay, RelayMetrics
from tests.django_site.conftest import RedisAway

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgres"])


def metric(metrics: RelayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_the_relay_backs_off_while_redis_is_away_then_sends_everything(
    database: str,
    redis_client: redis.Redis,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
    redis_away: RedisAway,
) -> None:
    relay = Relay(RelayMetrics(), using=database, batch_size=100, poll_seconds=0.5)
    with caplog.at_level(logging.WARNING, logger="django_sse_push.relay"):
        with redis_away():
            for n in range(3):
                publish_on_commit("orders", n, using=database)
            waits = [relay.run_once() for _ in range(7)]
            assert metric(relay.metrics, "sse_outbox_pending_events") == 3
            assert metric(relay.metrics, "sse_outbox_oldest_event_age_seconds") > 0
            assert metric(relay.metrics, "sse_outbox_redis_up") == 0
        after = [relay.run_once(), relay.run_once()]

    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    assert after == [0.5, 0.5]
    assert metric(relay.metrics, "sse_outbox_send_retries_total") == 7
    assert metric(relay.metrics, "sse_outbox_events_sent_total") == 3
    assert metric(relay.metrics, "sse_outbox_duplicates_total") == 0
    assert metric(relay.metrics, "sse_outbox_pending_events") == 0
    assert metric(relay.metrics, "sse_outbox_redis_up") == 1
    assert redis_client.xlen(keys.stream_key(key_prefix, "orders")) == 3
    # One line when the outage starts, one when it ends, however many passes failed between.
    assert [r.name for r in caplog.records].count("django_sse_push.relay") == 2


def test_a_full_batch_is_followed_at_once_by_the_next(database: str, redis_away: RedisAway) -> None:
    with redis_away():
        for n in range(5):
            publish_on_commit(f"c{n}", n, using=database)
    relay = Relay(RelayMetrics(), using=database, batch_size=2, poll_seconds=0.5)

    assert [relay.run_once() for _ in range(4)] == [0.0, 0.0, 0.5, 0.5]
    assert metric(relay.metrics, "sse_outbox_events_sent_total") == 5
