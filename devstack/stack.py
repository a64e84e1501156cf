"""The four processes of the product, started in dependency order and stopped in reverse."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .processes import Process, free_port
from .services import DjangoSite, Nginx, RedisServer, SseService


@dataclass
class Stack:
    run_dir: Path
    port: int = 0
    sse_env: dict[str, str] = field(default_factory=dict)
    # True: nginx reaches the SSE service over a Unix socket, cheaper than loopback TCP on one host
    # (README, Performance; `make bench` does). Off by default while callers use `sse.url` as an HTTP
    # URL (the browser tests, `make run`'s banner): a Unix socket has none.
    sse_unix_socket: bool = False
    redis: RedisServer = field(init=False)
    sse: SseService = field(init=False)
    django: DjangoSite = field(init=False)
    nginx: Nginx = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, free_port())
        uds = _socket_path(self.run_dir, "sse.sock") if self.sse_unix_socket else None
        self.sse = SseService(self.run_dir, self.redis.url, free_port(), env=self.sse_env, uds=uds)
        self.django = DjangoSite(self.run_dir, self.redis.url, free_port())
        self.nginx = Nginx(
            self.run_dir,
            self.port or free_port(),
            sse_upstream=self.sse.upstream,
            django_upstream=f"127.0.0.1:{self.django.port}",
            static_root=self.django.static_root,
        )

    def start(self) -> Stack:
        try:
            for part in (self.redis, self.sse, self.django, self.nginx):
                part.start()
        except BaseException:
            self.stop()
            raise
        return self

    def processes(self) -> list[Process]:
        parts = (self.redis, self.sse, self.django, self.nginx)
        return [part.process for part in parts if part.process is not None]

    def stop(self) -> None:
        for part in (self.nginx, self.django, self.sse, self.redis):
            part.stop()


def _socket_path(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, or a fresh directory under /tmp if that is too long for a Unix socket."""
    path = run_dir.resolve() / name
    if len(str(path).encode()) <= 100:
        return path
    return Path(tempfile.mkdtemp(prefix="devstack-")) / name
