"""Publish latency from Django's commit to the browser: the outbox against a plain publish after commit.

    python -m bench.outbox_latency [--events 500] [--interval-ms 10] [--postgres] [--backlog N [--refused]]

Starts the whole stack with devstack (SQLite, or PostgreSQL with --postgres), listens to one channel
through nginx as a browser does, and from this process, set up as the Django site, runs transactions
that save a board item and publish an event either way:
  outbox   `publish_on_commit()`: the event row is written in the transaction, sent after the commit
           by the fast path, then deleted (what the site does now);
  direct   `transaction.on_commit(lambda: publish(...))`: no outbox (what the site did before).
Each event carries `time.time_ns()` taken inside the transaction, before the item is saved, so its
latency spans the writes, the commit, the send and the trip through Redis, the SSE service and nginx.
Also reported: how long the transaction and its after-commit work held the caller (a request's cost).

With --backlog N, N events wait in the outbox on another channel (what an outage leaves) and each of
the measured channels has one leftover event, while the relay works through them: the outbox rows
then publish round-robin on BACKLOG_CHANNELS fresh channels, whose latency must not grow with the
backlog. The backlog rows still pending when a row's last event was committed show it was there throughout.
With --refused, one more channel's event waits too, on a channel Redis refuses (its stream key holds a
string): it must not slow the others either.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack.postgres import PostgresServer
from devstack.processes import free_port
from devstack.publishing import events_key
from devstack.services import REPO
from devstack.stack import Stack

from . import latency, payload

CHANNEL = "public.bench-outbox"
BACKLOG_CHANNEL = "public.bench-backlog"
REFUSED_CHANNEL = "public.bench-refused"
# Channels committed to while a backlog is relayed, as in the measurement of the relay's fairness.
BACKLOG_CHANNELS = 4


class Receiver(threading.Thread):
    """One stream through nginx; records each event's latency by its sequence number."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.connected = threading.Event()
        self.arrived: dict[int, int] = {}  # seq -> latency in ns

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(5, read=None)) as response:
                for line in response.iter_lines():
                    if line == ": connected":
                        self.connected.set()
                    found = payload.EVENT_DATA.fullmatch(line.encode())
                    if found:
                        self.arrived[int(found[2])] = time.time_ns() - int(found[1])
        except httpx.TransportError:
            pass  # the stack stopped under the stream: the run is over


def histogram(samples_ns: list[int]) -> latency.Histogram:
    result = latency.Histogram()
    for sample in samples_ns:
        result.bins[latency.bin_of(sample)] += 1
        result.max_ns = max(result.max_ns, sample)
    return result


def run_path(
    name: str,
    publish_one: Callable[[int], None],
    receiver: Receiver,
    events: int,
    interval: float,
    left: Callable[[], int] = lambda: 0,
) -> dict[str, object]:
    """`left` is asked once the last event is committed: how much backlog was still pending then."""
    held: list[int] = []
    first = len(receiver.arrived)
    base = max(receiver.arrived, default=-1) + 1
    for n in range(events):
        started = time.monotonic_ns()
        publish_one(base + n)
        held.append(time.monotonic_ns() - started)
        time.sleep(interval)
    backlog_left = left()
    deadline = time.monotonic() + 30
    while len(receiver.arrived) < first + events and time.monotonic() < deadline:
        time.sleep(0.05)
    arrived = [receiver.arrived[base + n] for n in range(events) if base + n in receiver.arrived]
    delivered, caller = histogram(arrived).summary(), histogram(held).summary()
    return {
        "path": name,
        "delivered": len(arrived),
        "p50_ms": delivered["lat_p50_ms"],
        "p99_ms": delivered["lat_p99_ms"],
        "max_ms": delivered["lat_max_ms"],
        "caller_p50_ms": caller["lat_p50_ms"],
        "caller_p99_ms": caller["lat_p99_ms"],
        "left": backlog_left,
    }


@contextmanager
def running_stack(run_dir: Path, postgres: bool) -> Iterator[Stack]:
    database = PostgresServer(run_dir, free_port()).start() if postgres else None
    django_env = {"DATABASE_URL": database.url} if database is not None else {}
    stack = Stack(run_dir, django_env=django_env)
    try:
        yield stack.start()
    finally:
        stack.stop()
        if database is not None:
            database.stop()


def as_site(stack: Stack) -> None:
    """This process becomes the Django site of `stack`: same settings, database and Redis."""
    os.environ.update({**stack.django.env, "DJANGO_SETTINGS_MODULE": "config.settings"})
    sys.path.insert(0, str(REPO / "django_site"))
    import django

    django.setup()


def queue_backlog(events: int, channels: list[str]) -> None:
    """What an outage leaves: `events` rows waiting on BACKLOG_CHANNEL, one on each of `channels`
    (REFUSED_CHANNEL among them, if given)."""
    import uuid

    from django_sse_push.models import OutboxEvent

    def row(channel: str, data: bytes) -> OutboxEvent:
        return OutboxEvent(channel=channel, event="", data=data, idempotency_key=uuid.uuid4().hex)

    rows = [row(BACKLOG_CHANNEL, b'"backlog"') for _ in range(events)]
    OutboxEvent.objects.bulk_create([*rows, *(row(channel, b'"leftover"') for channel in channels)], 5000)


def still_pending() -> int:
    from django_sse_push.models import OutboxEvent

    return int(OutboxEvent.objects.filter(channel=BACKLOG_CHANNEL).count())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbox_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=500, help="events per path (default 500)")
    parser.add_argument("--interval-ms", type=float, default=10.0, help="pause between events (default 10)")
    parser.add_argument("--postgres", action="store_true", help="Django on PostgreSQL instead of SQLite")
    parser.add_argument(
        "--backlog", type=int, default=0, help="outbox rows waiting on another channel (default 0: none)"
    )
    parser.add_argument("--refused", action="store_true", help="with --backlog: and a channel Redis refuses")
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp,
        running_stack(Path(tmp), args.postgres) as stack,
    ):
        as_site(stack)
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from demo.models import BoardItem
        from django_sse_push.publish import publish, publish_on_commit

        alice = get_user_model().objects.get(username="alice")
        if args.refused:
            with stack.redis.client() as client:
                client.set(events_key(REFUSED_CHANNEL), "not a stream")
        channels = [f"{CHANNEL}-{n}" for n in range(BACKLOG_CHANNELS)] if args.backlog else [CHANNEL]
        receiver = Receiver(f"{stack.nginx.url}/sse/?" + "&".join(f"channel={c}" for c in channels))
        receiver.start()
        if not receiver.connected.wait(10):
            print("the stream did not open", file=sys.stderr)
            return 1

        def through_the_outbox(seq: int) -> None:
            with transaction.atomic():
                data = json.loads(payload.encode(time.time_ns(), seq))
                BoardItem.objects.create(author=alice, text="bench")
                publish_on_commit(channels[seq % len(channels)], data)

        def direct(seq: int) -> None:
            with transaction.atomic():
                data = json.loads(payload.encode(time.time_ns(), seq))
                BoardItem.objects.create(author=alice, text="bench")
                transaction.on_commit(lambda: publish(CHANNEL, data))

        interval = args.interval_ms / 1000
        run_path("warm-up", through_the_outbox, receiver, 50, interval)
        paths: tuple[tuple[str, Callable[[int], None]], ...] = (
            ("direct", direct),
            ("outbox", through_the_outbox),
        )
        if args.backlog:
            paths = (("outbox", through_the_outbox), ("backlog", through_the_outbox))
        rows = []
        for name, path in paths * 2:
            if name == "backlog":
                queue_backlog(args.backlog, [*channels, *([REFUSED_CHANNEL] if args.refused else [])])
            rows.append(run_path(name, path, receiver, args.events, interval, still_pending))
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"commit to browser through nginx, {args.events} events per row, {database}")
    if args.backlog:
        print(
            f"backlog: {args.backlog} rows waiting on another channel as each backlog row starts, "
            f"events round-robin on {BACKLOG_CHANNELS} channels with one leftover row each"
            + (f"; {REFUSED_CHANNEL} refused by Redis" if args.refused else "")
        )
    header = ("path", "delivered", "p50 ms", "p99 ms", "max ms", "caller p50", "caller p99", "left")
    print(f"{header[0]:8} " + " ".join(f"{title:>10}" for title in header[1:]))
    for row in rows:
        values = ("delivered", "p50_ms", "p99_ms", "max_ms", "caller_p50_ms", "caller_p99_ms", "left")
        print(f"{row['path']:8} " + " ".join(f"{row[name]!s:>10}" for name in values))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
