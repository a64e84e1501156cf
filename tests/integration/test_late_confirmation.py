"""A Redis that confirms a subscription late: the channel still goes live, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import redis

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from tests.integration.probes import scrape
from tests.integration.redis_proxy import DelayingProxy
from tests.support.publish import publish
from tests.support.sse import open_stream

# Longer than the hub waits for a confirmation before it starts streams anyway (hub.STUCK_AFTER).
LATE = 6.5


async def test_a_channel_whose_first_subscribe_redis_confirms_late_still_delivers(
    redis_server: RedisServer, redis_client: redis.Redis, channel: str, tmp_path: Path
) -> None:
    """Regression: when Redis confirmed a channel's first SUBSCRIBE after more than 5 s, the streams
    started and the channel was marked stale, but only a reconnecting link started its gap fill; the
    late confirmation started nothing, so the channel held its messages back forever and its
    clients, although `: connected`, never got another event."""
    pubsub_name = f"sse:{{{channel}}}".encode()
    marker = b"subscribe\r\n$%d\r\n%s" % (len(pubsub_name), pubsub_name)
    with DelayingProxy(redis_server.port, marker, LATE) as proxy:
        # The default heartbeat: the link's keepalive must not notice the held replies and reconnect.
        service = SseService(tmp_path, proxy.url, free_port(), env={"SSE_HEARTBEAT_SECONDS": "15"}).start()
        try:
            url = f"{service.url}/sse/{channel}"
            async with open_stream(url, timeout=15) as one, open_stream(url, timeout=15) as two:
                assert proxy.delayed.is_set()
                ids = [publish(redis_client, channel, str(n)) for n in range(3)]
                for stream in (one, two):
                    events = await stream.wait_for_events(3, timeout=LATE + 5)
                    assert [e.id for e in events] == [f"{channel}/{i}" for i in ids]
                # Those three may have come from the stream's history (the fill after the late
                # confirmation); the channel must now be live on pub/sub too.
                ids.append(publish(redis_client, channel, "3"))
                for stream in (one, two):
                    events = await stream.wait_for_events(4, timeout=5)
                    assert [e.id for e in events] == [f"{channel}/{i}" for i in ids]
                metrics = await scrape(service)
                assert metrics['sse_channels_in_phase{phase="live"}'] == 1
                assert metrics["sse_messages_received_total"] >= 1
        finally:
            service.stop()
