"""A Redis Cluster master cut off by the network while it runs: the service notices, follows the
failover to its replica, fills the gap from the stream, and loses nothing.

The test enters a network namespace of its own (`devstack.netns.Loopbacks`), where each cluster node
listens on and connects from a loopback address of its own; cutting one master's address off drops
its clients' packets and its cluster bus alike, so its replica is promoted while it still runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.exceptions import RedisClusterException

from devstack.cluster import RedisCluster
from devstack.netns import Loopbacks, NamespaceError, inside
from devstack.processes import free_port
from devstack.publishing import events_key
from devstack.services import SseService
from tests.support.publish import publish
from tests.support.sse import open_stream

pytestmark = pytest.mark.cluster

SILENCE_SECONDS = 3.0
SSE_ENV = {
    "SSE_HEARTBEAT_SECONDS": "15",
    "SSE_REDIS_SILENCE_SECONDS": str(SILENCE_SECONDS),
    "SSE_PRESENCE_SECONDS": "0.5",
}
DETECTION_MARGIN = 3.0


@pytest.fixture
def loopbacks() -> Iterator[Loopbacks]:
    try:
        made = Loopbacks.create()
    except NamespaceError as exc:
        pytest.fail(f"cannot make the test's own network: {exc}")
    try:
        with inside(made.namespace):
            yield made
    finally:
        made.remove()


@pytest.fixture
def cluster(loopbacks: Loopbacks, tmp_path: Path) -> Iterator[RedisCluster]:
    started = RedisCluster(tmp_path, own_addresses=True).start()
    yield started
    for address in list(loopbacks.cut):
        loopbacks.rejoin(address)
    started.stop()


@pytest.fixture
def service(cluster: RedisCluster, tmp_path: Path) -> Iterator[SseService]:
    first = cluster.ports[0]
    env = {**SSE_ENV, "SSE_REDIS_CLUSTER_NODES": cluster.startup_nodes}
    started = SseService(tmp_path, f"redis://{cluster.address_of[first]}:{first}/0", free_port(), env=env)
    yield started.start()
    started.stop()


async def publish_through(client: redis.RedisCluster, channel: str, n: int, timeout: float = 30) -> None:
    """Publishes event `n`, retrying while the cluster fails over (its client errs until then)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                publish(client, channel, f'{{"n": {n}}}')
                return
            except (redis.RedisError, RedisClusterException):
                await asyncio.sleep(0.2)


async def reconnects(service: SseService) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{service.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("sse_redis_reconnects_total "):
            return float(line.split()[1])
    raise AssertionError("no sse_redis_reconnects_total in /metrics")


async def test_a_partitioned_master_is_noticed_its_failover_followed_and_nothing_lost(
    loopbacks: Loopbacks, cluster: RedisCluster, service: SseService, channel: str
) -> None:
    """A master cut off leaves the service's sharded subscription to it open and silent: the service
    noticed only after three heartbeats (45-60 s by default) and meanwhile followed no failover, its
    listeners on that master's slots getting nothing. Now the link fails within
    SSE_REDIS_SILENCE_SECONDS, the slot map is reloaded, the channel is subscribed on the promoted
    replica, and what was published meanwhile comes from the stream: every event once, in order."""
    master = cluster.master_of_key(events_key(channel))
    with cluster.client() as client:
        async with open_stream(f"{service.url}/sse/{channel}") as stream:
            await publish_through(client, channel, 0)
            await stream.wait_for_events(1)
            before = await reconnects(service)

            loopbacks.cut_off(cluster.address_of[master])
            started = time.monotonic()
            async with asyncio.timeout(SILENCE_SECONDS + 30):
                while await reconnects(service) == before:
                    await asyncio.sleep(0.1)
            noticed = time.monotonic() - started
            assert noticed <= SILENCE_SECONDS + DETECTION_MARGIN, f"noticed after {noticed:.1f}s"

            for n in range(1, 11):
                await publish_through(client, channel, n)
            events = await stream.wait_for_events(11, timeout=40)
            assert [event.data for event in events] == [f'{{"n": {n}}}' for n in range(11)]
            # Published through the promoted replica (asking the cluster itself could reach the cut node).
            assert client.get_node_from_key(events_key(channel)).port != master
