"""From Django's commit to the browser through nginx, with Redis stopped in between (SQLite, one Redis).

Posts made while Redis is away are saved with their events in the outbox; once Redis is back the relay
publishes them, and a follower gets every one exactly once, in the order they were posted.
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
from tests.support.metrics import scrape as metric

SSE_ENV = {**TEST_SSE_ENV, "SSE_RETRY_MS": "100"}
DJANGO_ENV = {"SSE_OUTBOX_POLL_SECONDS": "0.1"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(tmp_path_factory.mktemp("outbox"), sse_env=SSE_ENV, django_env=DJANGO_ENV).start()
    yield started
    started.stop()


async def test_posts_while_redis_is_stopped_reach_a_follower_exactly_once_in_order(stack: Stack) -> None:
    marker = uuid.uuid4().hex[:8]
    posted = [f"{marker} post {n}" for n in range(5)]
    url = f"{stack.nginx.url}/sse/{BOARD_CHANNEL}"
    sent_before = await metric(stack.relay.metrics_url, 'sse_outbox_events_sent_total{database="default"}')
    async with board_author(stack.nginx.url) as alice:
        follower = await following(url, received(marker, len(posted) + 1))
        await asyncio.to_thread(stack.redis.stop)
        try:
            statuses = [await post_to_board(alice, text) for text in posted]
            async with httpx.AsyncClient(base_url=stack.nginx.url) as visitor:
                pages = [
                    (await visitor.get(path)).status_code for path in ("/board/", "/board/presence", "/")
                ]
        finally:
            await asyncio.to_thread(stack.redis.start)
        async with asyncio.timeout(20):
            while await metric(stack.relay.metrics_url, 'sse_outbox_pending_events{database="default"}'):
                await asyncio.sleep(0.1)
        # Sent at once, after the relay's.
        statuses.append(await post_to_board(alice, f"{marker} after"))
        followed = await follower

    assert statuses == [200] * 6 and pages == [200, 200, 200]
    assert not followed.timed_out, followed
    assert texts(followed.events, marker) == [*posted, f"{marker} after"]
    # Those posted during the outage went out through the relay (the last one too, if the site's first
    # send after the restart met a connection Redis had closed).
    assert await metric(
        stack.relay.metrics_url, 'sse_outbox_events_sent_total{database="default"}'
    ) - sent_before >= len(posted)
