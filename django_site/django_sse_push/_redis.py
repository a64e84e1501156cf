"""The process's Redis client and publish script, created on first use, never at import.

One client (and so one connection pool) per process, keyed by where Redis is (SSE_REDIS_URL,
or SSE_REDIS_CLUSTER_NODES for a Redis Cluster): tests that override the setting get a client
for their server, and the old one is closed.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisClusterException

from django_sse_push.conf import push_settings

_SCRIPT_PATH = Path(__file__).resolve().parent / "lua" / "publish.lua"
_CLIENT_NAME = "django-publisher"
# A request waits at most this long on Redis, rather than hanging on a node that stopped answering.
_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}
# A pooled connection that a partition left open and silent is found dead while idle, within some
# 10 s, instead of costing the next request its whole timeout (TCP connections only).
_KEEPALIVE = {
    "socket_keepalive": True,
    "socket_keepalive_options": {
        socket.TCP_KEEPIDLE: 5,
        socket.TCP_KEEPINTVL: 2,
        socket.TCP_KEEPCNT: 3,
        socket.TCP_USER_TIMEOUT: 10_000,
    },
}


class UnusableRedisSettingError(redis.RedisError):
    """SSE_REDIS_URL or SSE_REDIS_CLUSTER_NODES is one redis-py cannot read (`manage.py check` names it:
    E001, E002). A Redis error, raised where the client is made, so every caller meets it as it meets
    Redis being away: a page renders without a start position, the ticket view answers 503, and
    nothing after a commit turns the request into a 500."""


# What Redis failing looks like: redis-py's cluster errors (no node answers) are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)


@dataclass(frozen=True)
class _Connection:
    where: tuple[str, ...]
    client: redis.Redis | RedisCluster
    publish_script: Script


_lock = threading.Lock()
_current: _Connection | None = None


def get_client() -> redis.Redis | RedisCluster:
    return _connection().client


def get_publish_script() -> Script:
    """The Lua publish step; runs with EVALSHA and loads itself on NOSCRIPT."""
    return _connection().publish_script


def is_cluster(client: redis.Redis | RedisCluster) -> bool:
    return isinstance(client, RedisCluster)


def publish_command() -> str:
    """Events and control messages go out on sharded pub/sub on a cluster: a node sends them only to
    its own subscribers, where classic PUBLISH would copy every message to every node."""
    return "SPUBLISH" if is_cluster(get_client()) else "PUBLISH"


def close() -> None:
    """Close the client; the next call creates a new one."""
    global _current
    with _lock:
        if _current is not None:
            _current.client.close()
            _current = None


@cache
def _script_source() -> bytes:
    return _SCRIPT_PATH.read_bytes()


def _where() -> tuple[str, ...]:
    configured = push_settings()
    return configured.REDIS_CLUSTER_NODES or (configured.REDIS_URL,)


def _new_client(where: tuple[str, ...]) -> redis.Redis | RedisCluster:
    if push_settings().REDIS_CLUSTER_NODES:
        nodes = [ClusterNode(host, int(port)) for host, _, port in (n.rpartition(":") for n in where)]
        return RedisCluster(startup_nodes=nodes, client_name=_CLIENT_NAME, **_TIMEOUTS, **_KEEPALIVE)
    keepalive = {} if where[0].startswith("unix://") else _KEEPALIVE
    return redis.Redis.from_url(where[0], client_name=_CLIENT_NAME, **_TIMEOUTS, **keepalive)


def _connection() -> _Connection:
    global _current
    where = _where()
    current = _current
    if current is not None and current.where == where:
        return current
    with _lock:
        if _current is None or _current.where != where:
            if _current is not None:
                _current.client.close()
            try:
                client = _new_client(where)
            except ValueError as exc:  # what redis-py raises for a URL or node it cannot read
                raise UnusableRedisSettingError(f"the Redis setting is unusable ({exc})") from exc
            _current = _Connection(where, client, client.register_script(_script_source()))
        return _current
