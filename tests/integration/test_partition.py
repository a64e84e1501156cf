"""Redis cut off by the network while its process lives: the service and the outbox relay notice, say
so, and lose nothing.

Redis runs on one host of the test's own, the service on another (`devstack.netns`: two network
namespaces joined by a veth pair); the link between them is cut with the processes running, so the
service's connections stay open and silent, as in a real partition. The test reaches the service on
its Unix socket and Redis on its own, which the cut does not touch: publishing goes on throughout.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from devstack.netns import Host, NamespaceError, Partition
from devstack.processes import free_port, wait_until
from devstack.publishing import events_key
from devstack.services import DjangoSite, OutboxRelay, RedisServer, SseService
from tests.support.publish import publish
from tests.support.sse import EventStream

# The production heartbeat, so pings alone would notice the partition only after 3 of them (45 s);
# the silence setting is what must notice it.
SILENCE_SECONDS = 3.0
SSE_ENV = {
    "SSE_HEARTBEAT_SECONDS": "15",
    "SSE_REDIS_SILENCE_SECONDS": str(SILENCE_SECONDS),
    "SSE_PRESENCE_SECONDS": "0.5",
}
# The relay's Redis client times a request out after this long (django_sse_push/_redis.py).
RELAY_SOCKET_TIMEOUT = 5.0
# What the service may take beyond the silence setting to see the link dead: a keepalive probe's
# interval, the hub's 0.5 s timer, and the scrape that reads it, on a loaded machine.
DETECTION_MARGIN = 3.0


@pytest.fixture
def partition() -> Iterator[Partition]:
    try:
        made = Partition.create()
    except NamespaceError as exc:
        pytest.fail(f"cannot make the test's own hosts: {exc}")
    yield made
    made.heal()
    made.remove()


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A short directory for Unix sockets (a path over 107 bytes cannot be bound)."""
    with tempfile.TemporaryDirectory(prefix="netns-") as directory:
        yield Path(directory)


@pytest.fixture
def far_redis(partition: Partition, tmp_path: Path, sockets: Path) -> Iterator[RedisServer]:
    host = partition.redis_side
    server = RedisServer(
        tmp_path, free_port(), bind=host.address, launcher=host.launcher, unix_socket=sockets / "redis.sock"
    ).start()
    yield server
    server.stop()


@pytest.fixture
def far_service(
    partition: Partition, far_redis: RedisServer, tmp_path: Path, sockets: Path
) -> Iterator[SseService]:
    host = partition.service_side
    service = SseService(
        tmp_path, far_redis.url, 0, env=SSE_ENV, uds=sockets / "sse.sock", launcher=host.launcher
    ).start()
    yield service
    service.stop()


@asynccontextmanager
async def on_socket(service: SseService) -> AsyncIterator[httpx.AsyncClient]:
    assert service.uds is not None
    transport = httpx.AsyncHTTPTransport(uds=str(service.uds))
    async with httpx.AsyncClient(transport=transport, base_url="http://sse", timeout=5) as client:
        yield client


async def sample(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


async def seconds_until(client: httpx.AsyncClient, name: str, value: float, timeout: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while await sample(client, name) != value:
            await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_silent_redis_is_noticed_within_the_silence_setting_and_nothing_is_lost(
    partition: Partition, far_redis: RedisServer, far_service: SseService, channel: str
) -> None:
    """A partition leaves the subscription's socket open and silent: nothing to read, no error. The
    service noticed only by its own pings, three heartbeats later (45-60 s by default), while the
    kernel's retransmissions would have taken some 15 minutes; meanwhile it looked ready and its
    streams got nothing. Now TCP keepalive and TCP_USER_TIMEOUT, from SSE_REDIS_SILENCE_SECONDS, fail
    the connection within that time: `sse_redis_connected` drops to 0, /readyz answers 503, and once
    the link is back the gap is filled from the stream, every event once and in order."""
    with far_redis.client() as redis_client:
        async with (
            on_socket(far_service) as client,
            client.stream("GET", f"/sse/{channel}") as response,
        ):
            stream = EventStream(response)
            await stream.wait_for_comment("connected")
            publish(redis_client, channel, '{"n": 0}')
            await stream.wait_for_events(1)

            partition.cut()
            for n in range(1, 6):
                publish(redis_client, channel, f'{{"n": {n}}}')
            async with on_socket(far_service) as probe:
                noticed = await seconds_until(probe, "sse_redis_connected", 0, SILENCE_SECONDS + 30)
                assert noticed <= SILENCE_SECONDS + DETECTION_MARGIN, f"noticed after {noticed:.1f}s"
                assert (await probe.get("/readyz")).status_code == 503
            for n in range(6, 11):
                publish(redis_client, channel, f'{{"n": {n}}}')

            partition.heal()
            events = await stream.wait_for_events(11, timeout=30)
            assert [event.data for event in events] == [f'{{"n": {n}}}' for n in range(11)]
            assert not stream.ended


@pytest.fixture
def far_relay(
    partition: Partition, far_redis: RedisServer, tmp_path: Path
) -> Iterator[tuple[DjangoSite, OutboxRelay]]:
    """The relay on the service's host; the site's database (SQLite) is a file both hosts see. The
    site itself is not started: events are recorded with `manage.py shell` on this machine's own
    host, from which the far Redis has no route, so each is left in the outbox for the relay."""
    site = DjangoSite(tmp_path, far_redis.url, free_port(), overrides={"SSE_OUTBOX_POLL_SECONDS": "0.1"})
    site.manage("migrate", "--noinput")
    host = partition.service_side
    relay = OutboxRelay(tmp_path, site.env, free_port(), launcher=host.launcher).start(wait_ready=False)
    wait_until(
        lambda: "sse_outbox_redis_up" in host.http_get(relay.metrics_port, "/metrics"), 20, "the relay"
    )
    yield site, relay
    relay.stop()


def relay_sample(host: Host, relay: OutboxRelay, name: str) -> float:
    for line in host.http_get(relay.metrics_port, "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the relay's /metrics")


def test_the_relay_notices_a_silent_redis_and_then_sends_what_waited_once(
    partition: Partition, far_redis: RedisServer, far_relay: tuple[DjangoSite, OutboxRelay], channel: str
) -> None:
    """The relay's pooled connection to Redis stays open across the cut: its next send waits at most
    the client's socket timeout, then counts as failed (`sse_outbox_redis_up` 0), and the events
    wait in the outbox; once the link is back each is published once, in order."""
    site, relay = far_relay
    host = partition.service_side

    def record(n: int) -> None:
        code = f"from django_sse_push.publish import publish_on_commit as p; p({channel!r}, {{'n': {n}}})"
        site.manage("shell", "-v", "0", "-c", code)

    def sent_all() -> bool:
        return relay_sample(host, relay, "sse_outbox_pending_events") == 0

    record(0)
    wait_until(sent_all, 20, "the relay to send the first event")  # its connection is open now
    partition.cut()
    started = time.monotonic()
    record(1)
    record(2)
    wait_until(lambda: relay_sample(host, relay, "sse_outbox_redis_up") == 0, 30, "the relay to notice")
    noticed = time.monotonic() - started
    assert noticed <= RELAY_SOCKET_TIMEOUT + DETECTION_MARGIN + 3, f"noticed after {noticed:.1f}s"
    assert relay_sample(host, relay, "sse_outbox_pending_events") == 2

    partition.heal()
    wait_until(sent_all, 30, "the relay to send what waited")
    with far_redis.client() as client:
        entries = client.xrange(events_key(channel))
    assert [fields[b"data"] for _, fields in entries] == [b'{"n":%d}' % n for n in range(3)]
