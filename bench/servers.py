"""The project: Redis, the SSE service and nginx for one scenario, started fresh, measured from /proc.

Started with the repo's `devstack`, so nginx runs the production template, the service the production
settings (plus any `--env` overrides), and the publisher the project's Lua step. With `replicas`, several
SSE services share the one Redis behind the one nginx, named and socketed as `devstack.Stack` does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devstack.processes import free_port
from devstack.replicas import nginx_in_front, sse_replicas
from devstack.services import Nginx, RedisServer, SseService

from .procstat import with_descendants
from .system import started_pid

# The benchmark's channels (bench, bench-N) are public, and its thousands of streams come from one address.
BENCH_SSE_ENV = {"SSE_PUBLIC_PREFIXES": "bench", "SSE_MAX_CONNECTIONS_PER_ADDRESS": "1000000"}


@dataclass
class Servers:
    name: ClassVar[str] = "project"
    memory_groups: ClassVar[tuple[str, ...]] = ("service", "nginx")
    path_prefix: ClassVar[str] = "/sse/"
    # Sent once the stream's channels are subscribed: from then on nothing published is missed.
    ready_marker: ClassVar[str] = ": connected\n"
    run_dir: Path
    direct: bool = False
    sse_env: dict[str, str] = field(default_factory=dict)
    # nginx reaches the service over a Unix socket instead of loopback TCP (not with `direct`).
    unix_upstream: bool = False
    # SSE services nginx balances the streams over; `direct` has no nginx, so it takes only one.
    replicas: int = 1
    redis: RedisServer = field(init=False)
    sse_services: list[SseService] = field(init=False, default_factory=list)
    nginx: Nginx | None = field(init=False, default=None)

    def start(self) -> Servers:
        if self.replicas < 1 or (self.direct and self.replicas > 1):
            raise ValueError(f"{self.replicas} replicas: at least one, and only one without nginx")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, free_port())
        self.sse_services = sse_replicas(
            self.run_dir,
            self.redis.url,
            self.replicas,
            env={**BENCH_SSE_ENV, **self.sse_env},
            unix_socket=self.unix_upstream and not self.direct,
        )
        try:
            self.redis.start()
            for service in self.sse_services:
                service.start()
            if not self.direct:
                # The benchmark never asks for a Django page.
                self.nginx = nginx_in_front(self.run_dir, self.sse_services).start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def port(self) -> int:
        """Where the load client connects: nginx, or the service itself with --direct."""
        return self.nginx.port if self.nginx is not None else self.sse_services[0].port

    def publish_target(self) -> dict[str, Any]:
        """The publisher goes through Redis with the project's Lua step, as Django does."""
        return {"redis_port": self.redis.port}

    def pids(self) -> dict[str, list[int]]:
        """Process groups as reported: nginx is its master plus the workers of the moment; `service`
        is every replica, and with several each is also a detail group of its own (`service:sse-2`)."""
        groups = {
            "service": [started_pid(service.process) for service in self.sse_services],
            "redis": [started_pid(self.redis.process)],
        }
        if len(self.sse_services) > 1:
            groups.update({f"service:{s.name}": [started_pid(s.process)] for s in self.sse_services})
        nginx = [started_pid(self.nginx.process)] if self.nginx is not None else []
        groups["nginx"] = with_descendants(nginx)
        return groups

    def streams(self) -> dict[str, int]:
        """Open streams per SSE service, from its own /metrics: how nginx spread the clients."""
        return {service.name: _open_streams(service.address) for service in self.sse_services}

    def service_log(self) -> str:
        return "".join(
            service.process.log_path.read_text(errors="replace")
            for service in self.sse_services
            if service.process is not None
        )

    def stop(self) -> None:
        for part in (self.nginx, *reversed(self.sse_services), getattr(self, "redis", None)):
            if part is not None:
                part.stop()


def _open_streams(address: int | Path) -> int:
    """The `sse_connections` gauge of the service listening at `address` (port or Unix socket)."""
    family, target = (
        (socket.AF_UNIX, str(address))
        if isinstance(address, Path)
        else (socket.AF_INET, ("127.0.0.1", address))
    )
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(target)
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        body = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    for line in body.splitlines():
        if line.startswith("sse_connections "):
            return int(float(line.split()[1]))
    raise OSError(f"no sse_connections in the /metrics of {address}")
