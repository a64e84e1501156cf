"""Scale-out: a Redis Cluster (3 masters, 3 replicas, sharded pub/sub) and 2 SSE replicas behind nginx.

Clients on both replicas listen to channels on every master and follow the EventSource reconnect
rules (`tests.support.sse.follow`) while events are published and a replica dies or a master fails
over; each must end with every event of its channels exactly once, in order. Run these alone with
`pytest -m cluster`.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.cluster import RedisCluster
from devstack.processes import free_port
from devstack.services import SseService
from devstack.stack import DEMO_POLICIES, Stack
from sse_service.protocol import StreamId, parse_stream_id
from tests.integration.probes import scrape
from tests.support.publish import ContinuousPublisher, publish
from tests.support.sse import Event, Followed, follow, open_stream

pytestmark = pytest.mark.cluster

EVENTS = 900
RATE = 300.0
SSE_ENV = {"SSE_RETRY_MS": "100", "SSE_HEARTBEAT_SECONDS": "1", "SSE_PRESENCE_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(
        tmp_path_factory.mktemp("cluster"),
        sse_env=SSE_ENV,
        sse_replicas=2,
        redis_cluster=True,
        channel_policies=DEMO_POLICIES,
    ).start()
    yield started
    started.stop()


@pytest.fixture
def channels(stack: Stack) -> list[str]:
    """Two public channels on each master, so every node carries some of the traffic."""
    assert stack.cluster is not None
    masters = stack.cluster.master_ports()
    by_master: dict[int, list[str]] = {port: [] for port in masters}
    while any(len(found) < 2 for found in by_master.values()):
        channel = f"public.cl-{uuid.uuid4().hex[:10]}"
        found = by_master[stack.cluster.master_of_key(f"sse:{{{channel}}}")]
        if len(found) < 2:
            found.append(channel)
    return [channel for found in by_master.values() for channel in found]


def subscriptions(channels: list[str]) -> list[list[str]]:
    """Eight connections: one per channel, and two on three channels of different masters each."""
    return [[c] for c in channels[:6]] + [channels[0::2], channels[1::2]]


async def listen_while(
    stack: Stack, subscribed: list[list[str]], publisher: ContinuousPublisher, disrupt: Callable[[], None]
) -> list[Followed]:
    """Follows every subscription through nginx while `publisher` runs and `disrupt()` runs in a thread."""
    newest: dict[str, StreamId] = {}  # per channel, once the publisher is done

    def done_for(wanted: list[str]) -> Callable[[list[Event]], bool]:
        def done(events: list[Event]) -> bool:
            if not newest:
                return False
            got = {
                c: max((parse_stream_id(e.stream_id) for e in events if e.channel == c), default=(0, 0))
                for c in wanted
            }
            return all(got[c] >= newest[c] for c in wanted)

        return done

    results = [Followed() for _ in subscribed]
    listeners = [
        asyncio.create_task(
            follow(
                f"{stack.nginx.url}/sse/?" + "&".join(f"channel={c}" for c in wanted),
                done_for(wanted),
                60,
                followed=result,
            )
        )
        for wanted, result in zip(subscribed, results, strict=True)
    ]
    async with asyncio.timeout(10):
        while not all(result.connections for result in results):
            await asyncio.sleep(0.01)
    publisher.start()
    await asyncio.sleep(1.0)
    await asyncio.to_thread(disrupt)
    await asyncio.to_thread(publisher.join, 30)
    newest.update({channel: parse_stream_id(ids[-1]) for channel, ids in publisher.stream_ids().items()})
    await asyncio.gather(*listeners)
    return results


def assert_exactly_once_in_order(
    subscribed: list[list[str]], results: list[Followed], publisher: ContinuousPublisher
) -> None:
    assert not publisher.is_alive()
    published = publisher.stream_ids()
    assert sum(map(len, published.values())) >= EVENTS
    for wanted, followed in zip(subscribed, results, strict=True):
        assert not followed.timed_out, f"{wanted}: {followed}"
        for channel in wanted:
            received = [e.stream_id for e in followed.events if e.channel == channel]
            assert received == published[channel], f"{channel}: {len(received)} of {len(published[channel])}"
        assert len(followed.events) == sum(len(published[c]) for c in wanted)


async def connections_of(stack: Stack) -> list[int]:
    """Open streams per SSE replica, from each one's own metrics."""
    counts = []
    async with httpx.AsyncClient(timeout=3) as client:
        for service in stack.sse_services:
            metrics = (await client.get(f"{service.url}/metrics")).text
            found = re.search(r"^sse_connections (\S+)$", metrics, re.M)
            assert found, metrics
            counts.append(int(float(found[1])))
    return counts


def publisher_for(stack: Stack, channels: list[str]) -> ContinuousPublisher:
    assert stack.cluster is not None
    return ContinuousPublisher(stack.cluster.client, channels, EVENTS, RATE)


async def test_clients_on_both_replicas_get_every_event_of_every_node_exactly_once(
    stack: Stack, channels: list[str]
) -> None:
    subscribed = subscriptions(channels)
    spread: list[list[int]] = []

    def look_at_the_spread() -> None:
        spread.append(asyncio.run(connections_of(stack)))

    publisher = publisher_for(stack, channels)
    results = await listen_while(stack, subscribed, publisher, look_at_the_spread)
    assert_exactly_once_in_order(subscribed, results, publisher)
    assert all(count > 0 for count in spread[0]), f"nginx left a replica idle: {spread[0]}"
    assert all(result.connections == 1 for result in results)


async def test_a_killed_replicas_clients_resume_on_the_other_without_loss(
    stack: Stack, channels: list[str]
) -> None:
    subscribed = subscriptions(channels)
    victim = stack.sse_services[1]
    publisher = publisher_for(stack, channels)

    def kill_a_replica() -> None:
        assert victim.process is not None
        victim.process.kill()

    try:
        results = await listen_while(stack, subscribed, publisher, kill_a_replica)
    finally:
        victim.start()
    assert_exactly_once_in_order(subscribed, results, publisher)
    assert any(result.connections >= 2 for result in results), "no client was on the killed replica"


async def test_a_master_failing_over_loses_nothing(stack: Stack, channels: list[str], tmp_path: Path) -> None:
    assert stack.cluster is not None
    cluster = stack.cluster
    subscribed = subscriptions(channels)
    publisher = publisher_for(stack, channels)
    master = cluster.master_of_key(f"sse:{{{channels[0]}}}")
    promoted: list[int] = []

    def fail_over() -> None:
        promoted.append(cluster.failover(master))

    results = await listen_while(stack, subscribed, publisher, fail_over)
    assert_exactly_once_in_order(subscribed, results, publisher)
    assert cluster.master_of_key(f"sse:{{{channels[0]}}}") == promoted[0] != master
    # The streams stayed open: the hubs followed the slot to its new master and filled the gap.
    assert all(result.connections == 1 for result in results)
    assert sum([(await scrape(s))["sse_gaps_filled_total"] for s in stack.sse_services]) >= 1


async def test_tickets_revocation_and_presence_work_through_the_cluster(stack: Stack) -> None:
    """Tickets, revocation (a sharded control message) and presence counts, all on the cluster."""
    setup = (
        "from django.contrib.auth import get_user_model\n"
        "from django_sse_push.tickets import issue_ticket\n"
        "alice = get_user_model().objects.get(username='alice')\n"
        "print(alice.pk, issue_ticket(alice, [f'user.{alice.pk}']).token)\n"
    )
    pk, token = stack.django.manage("shell", "-v", "0", "-c", setup).stdout.split()
    url = f"{stack.nginx.url}/sse/user.{pk}?ticket={token}"
    async with open_stream(url) as stream:
        event_id = stack.django.manage("publish", f"user.{pk}", '{"for": "alice"}').stdout.strip()
        (event,) = await stream.wait_for_events(1)
        assert (event.channel, event.stream_id, event.data) == (f"user.{pk}", event_id, '{"for":"alice"}')
        count = (
            f"from django_sse_push.presence import subscriber_count\nprint(subscriber_count('user.{pk}'))\n"
        )
        async with asyncio.timeout(5):
            while stack.django.manage("shell", "-v", "0", "-c", count).stdout.strip() != "1":
                await asyncio.sleep(0.2)
        revoke = (
            "from django.contrib.auth import get_user_model\n"
            "from django_sse_push.tickets import revoke_user_tickets\n"
            f"print(revoke_user_tickets(get_user_model().objects.get(pk={pk})))\n"
        )
        assert stack.django.manage("shell", "-v", "0", "-c", revoke).stdout.strip() == "1"
        await stream.read_to_end(timeout=5)
    async with httpx.AsyncClient() as client:
        refused = await client.get(url)
    assert (refused.status_code, refused.text) == (401, "ticket expired or unknown\n")
    assert (
        sum([(await scrape(s))['sse_streams_ended_total{reason="revoked"}'] for s in stack.sse_services]) >= 1
    )


async def test_rewind_through_the_cluster_starts_each_channel_at_its_last_events(
    stack: Stack, channels: list[str]
) -> None:
    assert stack.cluster is not None
    client = stack.cluster.client()
    published = {channel: [publish(client, channel, str(n)) for n in range(8)] for channel in channels}
    query = "&".join(f"channel={channel}" for channel in channels)
    async with open_stream(f"{stack.nginx.url}/sse/?{query}&rewind=5") as stream:
        events = await stream.wait_for_events(5 * len(channels))
        live = publish(client, channels[0], '"live"')
        events = await stream.wait_for_events(5 * len(channels) + 1)
    for channel in channels:
        got = [e.stream_id for e in events if e.channel == channel]
        assert got == published[channel][3:] + ([live] if channel == channels[0] else [])


async def test_who_and_join_leave_work_through_the_cluster(stack: Stack) -> None:
    """Members listed by two replicas on the board's node, and joins published there (Lua on the
    channel's slot), read back by Django."""
    setup = (
        "from django.contrib.auth import get_user_model\n"
        "from django_sse_push.tickets import issue_ticket\n"
        "for name in ('alice', 'bob'):\n"
        "    user = get_user_model().objects.get(username=name)\n"
        "    print(user.pk, issue_ticket(user, ['public.board']).token)\n"
    )
    (alice, alice_token), (bob, bob_token) = (
        line.split() for line in stack.django.manage("shell", "-v", "0", "-c", setup).stdout.splitlines()
    )
    one, two = (service.url for service in stack.sse_services)
    who = (
        "from django_sse_push.presence import who\n"
        "print(' '.join(f'{m.user}:{m.name}' for m in who('public.board')))\n"
    )
    async with (
        open_stream(f"{one}/sse/public.board") as watcher,
        open_stream(f"{one}/sse/public.board?ticket={alice_token}"),
        open_stream(f"{two}/sse/public.board?ticket={bob_token}"),
    ):
        async with asyncio.timeout(10):
            while stack.django.manage("shell", "-v", "0", "-c", who).stdout.split() != sorted(
                [f"{alice}:alice", f"{bob}:bob"]
            ):
                await asyncio.sleep(0.2)
            while len([e for e in watcher.events if e.event == "presence.join"]) < 2:
                await watcher.read_more()
    joined = sorted(e.data for e in watcher.events if e.event == "presence.join")
    assert joined == sorted(
        f'{{"user":"{pk}","name":"{name}"}}' for pk, name in [(alice, "alice"), (bob, "bob")]
    )


async def test_a_slot_moving_to_another_master_loses_nothing(stack: Stack, channels: list[str]) -> None:
    """Resharding: the slot and its keys migrate while events are published; Redis drops the sharded
    subscriptions of the slot (`sunsubscribe`) and the hubs follow it to its new master."""
    assert stack.cluster is not None
    cluster = stack.cluster
    subscribed = subscriptions(channels)
    publisher = publisher_for(stack, channels)
    key = f"sse:{{{channels[0]}}}"
    target = next(port for port in cluster.master_ports() if port != cluster.master_of_key(key))

    def migrate() -> None:
        cluster.migrate_slot(key, target)

    results = await listen_while(stack, subscribed, publisher, migrate)
    assert_exactly_once_in_order(subscribed, results, publisher)
    assert cluster.master_of_key(key) == target
    assert all(result.connections == 1 for result in results)


async def test_a_killed_master_loses_nothing_published_after_its_replica_takes_over(
    stack: Stack, channels: list[str]
) -> None:
    """A crash, not a handover: the hubs' links to the dead master break, and they follow the slot map
    to the promoted replica. Replication is asynchronous, so what the dead master took but had not
    passed on may be gone from Redis (a client may even have got it live); everything else arrives."""
    assert stack.cluster is not None
    cluster = stack.cluster
    subscribed = subscriptions(channels)
    publisher = publisher_for(stack, channels)
    key = f"sse:{{{channels[0]}}}"
    master = cluster.master_of_key(key)
    taken_over: list[float] = []

    def kill_the_master() -> None:
        cluster.kill_master(master)
        taken_over.append(time.time() * 1000)

    results = await listen_while(stack, subscribed, publisher, kill_the_master)
    assert not publisher.is_alive()
    published = publisher.stream_ids()
    for wanted, followed in zip(subscribed, results, strict=True):
        assert not followed.timed_out, f"{wanted}: {followed}"
        for channel in wanted:
            received = [parse_stream_id(e.stream_id) for e in followed.events if e.channel == channel]
            assert received == sorted(set(received)), f"{channel}: duplicates or disorder"
            in_redis = [parse_stream_id(i) for i in published[channel]]
            assert set(in_redis) <= set(received), f"{channel}: {len(set(in_redis) - set(received))} missed"
            assert all(ms < taken_over[0] for ms, _ in set(received) - set(in_redis))


async def test_the_first_channel_of_a_node_hears_what_is_published_right_after_connected(
    stack: Stack, channels: list[str], tmp_path: Path
) -> None:
    """A fresh process makes its link to a node when a channel there first needs it; that channel's
    stream still hears an event published the moment it says `: connected` (tests/sse_service/
    test_hub.py pins the race deterministically, with a link slowed down)."""
    assert stack.cluster is not None
    fresh = SseService(tmp_path, "", free_port(), env={**stack.sse.env}, name="sse-fresh").start()
    try:
        with stack.cluster.client() as client:
            for channel in channels[::2]:  # one per master: each needs a new link
                async with open_stream(f"{fresh.url}/sse/{channel}") as stream:
                    event_id = publish(client, channel, '"at once"')
                    (event,) = await stream.wait_for_events(1)
                assert event.stream_id == event_id
    finally:
        fresh.stop()


async def test_a_service_started_before_its_cluster_serves_once_the_cluster_forms(tmp_path: Path) -> None:
    """Regression: redis-py's cluster errors are not RedisErrors; the hub's task died when no node
    answered at start, and the service stayed unready for good."""
    cluster = RedisCluster(tmp_path / "late")
    env = {**SSE_ENV, "SSE_REDIS_CLUSTER_NODES": cluster.startup_nodes}
    service = SseService(tmp_path, "", free_port(), env=env, name="sse-early").start(wait_ready=False)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=3) as client:
            assert (await client.get("/readyz")).status_code == 503
            cluster.start()
            async with asyncio.timeout(20):
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.2)
        channel = f"public.late-{uuid.uuid4().hex[:8]}"
        async with open_stream(f"{service.url}/sse/{channel}") as stream:
            with cluster.client() as publisher:
                event_id = publish(publisher, channel, '"late"')
            (event,) = await stream.wait_for_events(1)
        assert event.stream_id == event_id
    finally:
        service.stop()
        cluster.stop()
