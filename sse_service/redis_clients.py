"""Where Redis is: one server (`SSE_REDIS_URL`) or a Redis Cluster (`SSE_REDIS_CLUSTER_NODES`).

Both the hub and the command paths (tickets, history, presence) get their clients here, so the rest
of the service runs unchanged on either. On a cluster, channels travel on sharded pub/sub
(`SSUBSCRIBE`), which a node delivers only to its own subscribers: the hub must hold one connection
per node that owns a channel it needs, and follow the slot map when slots move or a node fails over.
"""

from __future__ import annotations

import math
import socket
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import RedisClusterException, RedisError

from .settings import Settings

CommandClient: TypeAlias = "redis.Redis | RedisCluster"

# What Redis being unreachable or in flux looks like: redis-py's cluster errors (no node answers, a
# slot without an owner) are not RedisErrors.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)


def silence_options(silence_seconds: float) -> dict[int, int]:
    """TCP options under which a connection to a Redis that went silent fails within `silence_seconds`.

    A partition (a link cut, a host gone without a reset) leaves the socket open: nothing arrives and
    nothing fails. Idle, keepalive probes find it (first after half the time, then three more);
    with data unacknowledged, such as the hub's PING, TCP_USER_TIMEOUT does, where the kernel's own
    retransmissions would take some 15 minutes.
    """
    idle = max(1, math.ceil(silence_seconds / 2))
    return {
        socket.TCP_KEEPIDLE: idle,
        socket.TCP_KEEPINTVL: max(1, math.ceil(silence_seconds / 6)),
        socket.TCP_KEEPCNT: 3,
        socket.TCP_USER_TIMEOUT: math.ceil(silence_seconds * 1000),
    }


def _keepalive(settings: Settings) -> dict[str, Any]:
    """TCP keepalive under `silence_options`; nothing on a Unix socket, whose peer cannot vanish
    silently (and whose redis-py connection takes no keepalive arguments)."""
    if not settings.redis_cluster_nodes and settings.redis_url.startswith("unix://"):
        return {}
    return {
        "socket_keepalive": True,
        "socket_keepalive_options": silence_options(settings.redis_silence_seconds),
    }


def _subscription_options(settings: Settings) -> dict[str, Any]:
    """A subscription connection notices a dead peer by itself and never times out while idle: it
    waits for messages."""
    return {
        "health_check_interval": 0,
        "socket_connect_timeout": 5,
        # RESP2: pub/sub replies arrive as plain arrays, read in order like any other reply
        # (redis-py 8 defaults to RESP3, where they are push messages routed to a handler).
        "protocol": 2,
        **_keepalive(settings),
    }


def command_client(settings: Settings) -> CommandClient:
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 2, **_keepalive(settings)}
    if settings.redis_cluster_nodes:
        nodes = [ClusterNode(host, port) for host, port in settings.redis_cluster_nodes]
        return RedisCluster(startup_nodes=nodes, **options)
    return redis.Redis.from_url(settings.redis_url, **options)


def is_cluster(client: CommandClient) -> bool:
    return isinstance(client, RedisCluster)


class SingleRedis:
    """One server: every channel lives on it, under classic pub/sub."""

    sharded = False

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        if options is None:
            options = _subscription_options(Settings(redis_url=url))
        self._pool = ConnectionPool.from_url(url, **options)
        parts = urlsplit(url)
        # How logs name it: host:port or the socket's path, never the password.
        self._node = parts.path if parts.scheme == "unix" else parts.netloc.rpartition("@")[2]

    def node_of(self, pubsub_channel: bytes) -> str:
        return self._node

    async def refresh(self) -> None:
        """Nothing moves on one server."""

    def connection(self, node: str) -> Connection:
        connection: Connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        return connection


class ClusterSlots:
    """A Redis Cluster: a channel lives on the master that owns its hash slot, under sharded pub/sub."""

    sharded = True

    def __init__(self, client: RedisCluster, options: dict[str, Any]) -> None:
        self._client = client
        self._options = options

    def node_of(self, pubsub_channel: bytes) -> str:
        node = self._client.get_node_from_key(pubsub_channel.decode())
        assert node is not None
        return str(node.name)

    async def refresh(self) -> None:
        """Reloads the slot map from the cluster (after a failover, a migration or a MOVED)."""
        await self._client.nodes_manager.initialize()

    def connection(self, node: str) -> Connection:
        host, _, port = node.rpartition(":")
        return Connection(host=host, port=int(port), **self._options)


Topology: TypeAlias = "SingleRedis | ClusterSlots"


def topology(settings: Settings, client: CommandClient) -> Topology:
    if isinstance(client, RedisCluster):
        return ClusterSlots(client, _subscription_options(settings))
    return SingleRedis(settings.redis_url, _subscription_options(settings))
