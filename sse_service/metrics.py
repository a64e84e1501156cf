"""Prometheus metrics at `/metrics` on the service itself; nginx answers 404 for it publicly."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from .hub import Hub
from .limits import RoomRefusal

_COUNTERS = {
    "messages_received": "Messages received from Redis pub/sub",
    "events_delivered": "Events written to clients (one per client per event)",
    "bytes_sent": "Bytes of events written to clients",
    "messages_rejected": "Malformed or oversize messages dropped",
    "duplicates_dropped": "Live messages dropped because they were already delivered after a reconnect",
    "slow_consumers_cut": "Connections cut off because they did not read fast enough",
    "redis_reconnects": "Times the Redis subscription was lost and reconnected",
    "gaps_filled": "Times events missed during a Redis outage were delivered from the streams",
    "channels_asked_again": "Channels Redis did not confirm in time, placed and subscribed again",
}


class HubCollector(Collector):
    """Reads the hub's plain counters at scrape time, so the hot path never touches Prometheus."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self._hub.stats
        yield GaugeMetricFamily("sse_connections", "Open SSE connections", value=stats.connections)
        yield GaugeMetricFamily(
            "sse_channels_subscribed", "Channels this process subscribes to", value=self._hub.channel_count
        )
        phases = GaugeMetricFamily(
            "sse_channels_in_phase", "Channels per subscription phase", labels=["phase"]
        )
        for phase, count in self._hub.phase_counts().items():
            phases.add_metric([phase.value], count)
        yield phases
        yield GaugeMetricFamily(
            "sse_redis_connected", "1 while the Redis subscription is up", value=int(self._hub.connected)
        )
        for name, documentation in _COUNTERS.items():
            yield CounterMetricFamily(f"sse_{name}", documentation, value=getattr(stats, name))
        refused = CounterMetricFamily(
            "sse_streams_refused",
            "Streams refused (503) for want of room for their channels, by reason",
            labels=["reason"],
        )
        for reason in RoomRefusal:
            refused.add_metric([reason.value], stats.streams_refused[reason.value])
        yield refused
        ended = CounterMetricFamily("sse_streams_ended", "Streams ended, by reason", labels=["reason"])
        for end, count in stats.ended.items():
            ended.add_metric([end.value], count)
        yield ended
        yield from self._hub.latency.collect()


def metrics_registry(hub: Hub) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(HubCollector(hub))
    return registry


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.state.metrics), media_type=CONTENT_TYPE_LATEST)
