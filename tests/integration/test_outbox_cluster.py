"""The outbox on the Redis Cluster stack: the master holding the board's channel dies under posts.

Until a replica takes over, the channel's node is gone: the pages must still answer, the posts be
saved with their events, and a follower through nginx get every event exactly once, in order, once
the relay (or a later post's fast path) has sent them to the promoted replica.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack
from tests.conftest import TEST_SSE_ENV
from tests.support.board import BOARD_CHANNEL, board_author, following, post_to_board, received, texts
from tests.support.metrics import scrape

pytestmark = pytest.mark.cluster

SSE_ENV = {**TEST_SSE_ENV, "SSE_RETRY_MS": "100"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(
        tmp_path_factory.mktemp("outbox-cluster"),
        sse_env=SSE_ENV,
        redis_cluster=True,
        django_env={"SSE_OUTBOX_POLL_SECONDS": "0.1"},
    ).start()
    yield started
    started.stop()


async def test_posts_while_the_boards_master_is_down_reach_a_follower_exactly_once_in_order(
    stack: Stack,
) -> None:
    assert stack.cluster is not None
    cluster = stack.cluster
    master = cluster.master_of_key(f"sse:{{{BOARD_CHANNEL}}}")
    marker = uuid.uuid4().hex[:8]
    posted = [f"{marker} post {n}" for n in range(5)]
    url = f"{stack.nginx.url}/sse/{BOARD_CHANNEL}"
    async with board_author(stack.nginx.url) as alice:
        follower = await following(url, received(marker, len(posted) + 1))
        cluster.kill(master)
        statuses = [await post_to_board(alice, text) for text in posted]
        async with httpx.AsyncClient(base_url=stack.nginx.url, timeout=30) as visitor:
            pages = [(await visitor.get(path)).status_code for path in ("/board/", "/board/presence")]
        async with asyncio.timeout(30):
            while cluster.master_of_key(f"sse:{{{BOARD_CHANNEL}}}") == master:
                await asyncio.sleep(0.1)
            while await scrape(stack.relay.metrics_url, 'sse_outbox_pending_events{database="default"}'):
                await asyncio.sleep(0.1)
        statuses.append(await post_to_board(alice, f"{marker} after"))
        followed = await follower

    assert statuses == [200] * 6 and pages == [200, 200]
    assert not followed.timed_out, followed
    assert texts(followed.events, marker) == [*posted, f"{marker} after"]
    # The outage was real: the relay, not the posts' own requests, sent some of them.
    assert await scrape(stack.relay.metrics_url, 'sse_outbox_events_sent_total{database="default"}') > 0


async def test_the_board_answers_and_keeps_posts_with_every_cluster_node_down(stack: Stack) -> None:
    """/board/ and /board/presence answered 500 with the cluster unreachable: redis-py's
    RedisClusterException is no redis.RedisError, which was all the page caught."""
    assert stack.cluster is not None
    for port in stack.cluster.ports:
        if stack.cluster.nodes[port].running:
            stack.cluster.kill(port)
    async with board_author(stack.nginx.url) as alice:
        posted = await post_to_board(alice, "while the cluster is down")
        pages = [(await alice.get(path)).status_code for path in ("/board/", "/board/presence", "/")]
        presence = (await alice.get("/board/presence")).json()

    assert posted == 200 and pages == [200, 200, 200]
    assert presence["listeners"] is None
    async with asyncio.timeout(10):
        while not await scrape(stack.relay.metrics_url, 'sse_outbox_pending_events{database="default"}'):
            await asyncio.sleep(0.1)
