"""How many browsers listen to a channel right now, summed over every SSE process and replica.

The SSE processes keep these counts in Redis (README, "Wire contract"); a process that stops
refreshing its count drops out when the key expires.
"""

from __future__ import annotations

from django_sse_push import keys
from django_sse_push._redis import get_client
from django_sse_push.conf import push_settings


def subscriber_count(channel: str) -> int:
    client = get_client()
    prefix: str = push_settings().KEY_PREFIX
    processes = [p.decode() for p in client.smembers(keys.presence_key(prefix, channel))]
    if not processes:
        return 0
    counts = client.mget([keys.presence_count_key(prefix, channel, p) for p in processes])
    return sum(int(count) for count in counts if count is not None)
