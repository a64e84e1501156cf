"""The relay's passes: backoff while Redis is away, a channel Redis refuses waiting alone, every
database's outbox, what its metrics show, one log line per edge; and `manage.py sse_relay` itself."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.core.management import call_command

from devstack.processes import free_port
from django_sse_push import keys
from django_sse_push.models import OutboxEvent
from django_sse_push.publish import publish_on_commit
from django_sse_push.relay import FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, Relay, RelayMetrics
from tests.django_site.conftest import DJANGO_SITE, RedisAway

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgres"])


def metric(relay: Relay, name: str) -> float:
    value = relay.metrics.registry.get_sample_value(name, {"database": relay.using})
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
            assert metric(relay, "sse_outbox_pending_events") == 3
            assert metric(relay, "sse_outbox_oldest_event_age_seconds") > 0
            assert metric(relay, "sse_outbox_redis_up") == 0
        after = [relay.run_once(), relay.run_once()]

    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    assert after == [0.5, 0.5]
    assert metric(relay, "sse_outbox_send_retries_total") == 7
    assert metric(relay, "sse_outbox_events_sent_total") == 3
    assert metric(relay, "sse_outbox_duplicates_total") == 0
    assert metric(relay, "sse_outbox_pending_events") == 0
    assert metric(relay, "sse_outbox_redis_up") == 1
    assert redis_client.xlen(keys.stream_key(key_prefix, "orders")) == 3
    # One line when the outage starts, one when it ends, however many passes failed between.
    assert [r.name for r in caplog.records].count("django_sse_push.relay") == 2


def test_a_full_batch_is_followed_at_once_by_the_next(database: str, redis_away: RedisAway) -> None:
    with redis_away():
        for n in range(5):
            publish_on_commit(f"c{n}", n, using=database)
    relay = Relay(RelayMetrics(), using=database, batch_size=2, poll_seconds=0.5)

    assert [relay.run_once() for _ in range(4)] == [0.0, 0.0, 0.5, 0.5]
    assert metric(relay, "sse_outbox_events_sent_total") == 5


def test_a_channel_redis_refuses_is_backed_off_alone_and_not_taken_for_an_outage(
    database: str,
    redis_client: redis.Redis,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
    redis_away: RedisAway,
) -> None:
    """A channel whose publish Redis answered with an error (its stream key holds a string) kept
    run_once in outage backoff: the events of ten healthy channels trickled out over 25 s,
    sse_outbox_redis_up read 0 while Redis was up, and the log said Redis was down. Now the channel
    is counted, logged by name and retried on its own backoff; the others go out in the same pass."""
    redis_client.set(keys.stream_key(key_prefix, "broken"), "not a stream")
    with redis_away():
        publish_on_commit("broken", "stuck", using=database)
        for n in range(10):
            publish_on_commit(f"healthy-{n}", n, using=database)
    relay = Relay(RelayMetrics(), using=database, batch_size=100, poll_seconds=0.5)

    with caplog.at_level(logging.WARNING, logger="django_sse_push.relay"):
        waits = [relay.run_once(), relay.run_once()]

    assert waits == [0.5, 0.5]
    assert [redis_client.xlen(keys.stream_key(key_prefix, f"healthy-{n}")) for n in range(10)] == [1] * 10
    assert metric(relay, "sse_outbox_redis_up") == 1
    assert metric(relay, "sse_outbox_events_sent_total") == 10
    # The second pass came before the channel's own backoff ended: it was not tried again.
    assert metric(relay, "sse_outbox_refused_sends_total") == 1
    assert metric(relay, "sse_outbox_refused_channels") == 1
    assert metric(relay, "sse_outbox_pending_events") == 1
    [logged] = [r.getMessage() for r in caplog.records if r.name == "django_sse_push.relay"]
    assert "Redis refuses the events of channel 'broken'" in logged and "WRONGTYPE" in logged

    redis_client.delete(keys.stream_key(key_prefix, "broken"))
    time.sleep(FIRST_BACKOFF_SECONDS)
    relay.run_once()
    assert redis_client.xlen(keys.stream_key(key_prefix, "broken")) == 1
    assert metric(relay, "sse_outbox_refused_channels") == 0


def test_every_database_with_an_outbox_is_relayed_and_labelled(
    redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """`publish_on_commit(..., using="postgres")` stored the event in that database's outbox, but
    `manage.py sse_relay` read only `default`: the event never went out and the metrics said 0
    pending. Now the command relays every database the routers allow the outbox on."""
    with redis_away():
        publish_on_commit("orders", "from default", using="default")
        publish_on_commit("orders", "from postgres", using="postgres")
    out = io.StringIO()

    def stop_once_sent() -> None:
        deadline = time.monotonic() + 10
        while redis_client.xlen(keys.stream_key(key_prefix, "orders")) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=stop_once_sent)
    watcher.start()
    call_command("sse_relay", stdout=out)
    watcher.join()

    sent = [fields[b"data"] for _, fields in redis_client.xrange(keys.stream_key(key_prefix, "orders"))]
    assert sorted(sent) == [b'"from default"', b'"from postgres"']
    assert "database 'default' (sqlite), 'postgres' (postgresql)" in out.getvalue()
    assert OutboxEvent.objects.using("postgres").count() == 0


def test_metrics_of_two_databases_are_told_apart(redis_away: RedisAway) -> None:
    with redis_away():
        publish_on_commit("orders", 1, using="postgres")
    metrics = RelayMetrics()
    relays = [Relay(metrics, using=alias, batch_size=10, poll_seconds=1) for alias in ("default", "postgres")]
    for relay in relays:
        relay.run_once()

    assert [metric(relay, "sse_outbox_events_sent_total") for relay in relays] == [0, 1]


def test_the_relay_says_once_to_run_migrate_and_where_it_sends(tmp_path: Path, redis_url: str) -> None:
    """With the outbox table missing (`migrate` not run), the relay printed a traceback about once a
    second, forever; and it started silently under a new project's logging. Now it prints a start
    line as runserver does, and says once what to run."""
    env = {**os.environ, "DJANGO_DATABASE_PATH": str(tmp_path / "new.sqlite3"), "REDIS_URL": redis_url}
    env["SSE_OUTBOX_POLL_SECONDS"] = "0.05"
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "sse_relay", "--metrics-port", str(free_port())],
        cwd=DJANGO_SITE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(MAX_BACKOFF_SECONDS + 3)
    finally:
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=20)

    assert relay.returncode == 0, err
    assert "Outbox relay sending the outbox of database 'default' (sqlite) to Redis at redis://" in out
    assert "/metrics" in out
    assert err.count("run `manage.py migrate --database default`") == 1, err
    assert "Traceback" not in err
