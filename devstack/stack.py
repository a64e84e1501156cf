"""The processes of the product, started in dependency order and stopped in reverse."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cluster import RedisCluster
from .processes import Process, free_port
from .replicas import nginx_in_front, sse_replicas
from .services import REPO, DjangoSite, Nginx, OutboxRelay, RedisServer, SseService

# The demo's policy table (`make run`): the board lists who is viewing and announces joins and leaves.
DEMO_POLICIES = REPO / "django_site" / "demo" / "policies.json"


@dataclass
class Stack:
    run_dir: Path
    port: int = 0
    sse_env: dict[str, str] = field(default_factory=dict)
    # True: nginx reaches the SSE service over a Unix socket, cheaper than loopback TCP on one host
    # (README, Performance; `make bench` does). Off by default while callers use `sse.url` as an HTTP
    # URL (the browser tests, `make run`'s banner): a Unix socket has none.
    sse_unix_socket: bool = False
    # How many SSE services nginx balances over ("sse", "sse-2", ...), to test what needs more than one.
    sse_replicas: int = 1
    # A Redis Cluster instead of one redis-server; the services get its nodes in their env.
    redis_cluster: bool = False
    # More environment for Django and its outbox relay, e.g. DATABASE_URL for PostgreSQL.
    django_env: dict[str, str] = field(default_factory=dict)
    # A policy table per channel prefix both sides read (SSE_CHANNEL_POLICIES), e.g. the demo's.
    channel_policies: Path | None = None
    redis_server: RedisServer | None = field(init=False)
    cluster: RedisCluster | None = field(init=False)
    sse_services: list[SseService] = field(init=False)
    django: DjangoSite = field(init=False)
    relay: OutboxRelay = field(init=False)
    nginx: Nginx = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        sse_env, django_env = dict(self.sse_env), {}
        if self.channel_policies is not None:
            sse_env["SSE_CHANNEL_POLICIES"] = django_env["SSE_CHANNEL_POLICIES"] = str(self.channel_policies)
        taken: set[int] = set()
        if self.redis_cluster:
            self.redis_server, self.cluster = None, RedisCluster(self.run_dir)
            taken |= self.cluster.reserved_ports
            # The services still require a Redis URL: one node's, on db 0, the only one a cluster has.
            redis_url = f"redis://127.0.0.1:{self.cluster.ports[0]}/0"
            sse_env = {"SSE_REDIS_CLUSTER_NODES": self.cluster.startup_nodes, **sse_env}
            django_env["REDIS_CLUSTER_NODES"] = self.cluster.startup_nodes
        else:
            self.redis_server, self.cluster = RedisServer(self.run_dir, free_port(taken)), None
            redis_url = self.redis_server.url
        self.sse_services = sse_replicas(
            self.run_dir,
            redis_url,
            self.sse_replicas,
            env=sse_env,
            unix_socket=self.sse_unix_socket,
            taken=taken,
        )
        self.django = DjangoSite(
            self.run_dir, redis_url, free_port(taken), overrides={**django_env, **self.django_env}
        )
        self.relay = OutboxRelay(self.run_dir, self.django.env, free_port(taken))
        self.nginx = nginx_in_front(
            self.run_dir,
            self.sse_services,
            port=self.port,
            django_upstream=f"127.0.0.1:{self.django.port}",
            static_root=self.django.static_root,
            taken=taken,
        )

    @property
    def redis(self) -> RedisServer:
        """The single redis-server; a stack on a Redis Cluster has none (see `cluster`)."""
        if self.redis_server is None:
            raise RuntimeError("this stack runs a Redis Cluster, not one redis-server: use `stack.cluster`")
        return self.redis_server

    @property
    def sse(self) -> SseService:
        """The first SSE service, the only one unless `sse_replicas` asked for more."""
        return self.sse_services[0]

    def _parts(self) -> list[RedisServer | RedisCluster | SseService | DjangoSite | OutboxRelay | Nginx]:
        """In start order."""
        store = self.cluster if self.cluster is not None else self.redis
        return [store, *self.sse_services, self.django, self.relay, self.nginx]

    def start(self) -> Stack:
        try:
            for part in self._parts():
                part.start()
        except BaseException:
            self.stop()
            raise
        return self

    def processes(self) -> list[Process]:
        nodes = list(self.cluster.nodes.values()) if self.cluster is not None else []
        parts = (self.redis_server, *self.sse_services, self.django, self.relay, self.nginx)
        return nodes + [part.process for part in parts if part is not None and part.process is not None]

    def stop(self) -> None:
        for part in reversed(self._parts()):
            part.stop()
