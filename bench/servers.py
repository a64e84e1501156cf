"""Redis, the SSE service and nginx for one scenario: started fresh, measured from /proc, stopped.

Started with the repo's `devstack`, so nginx runs the production template, the service the production
settings (plus any `--env` overrides), and the publisher the project's Lua step.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import Process, free_port
from devstack.services import Nginx, RedisServer, SseService

from .procstat import with_descendants

# The benchmark's channels (bench, bench-N) are public, and its thousands of streams come from one address.
BENCH_SSE_ENV = {"SSE_PUBLIC_PREFIXES": "bench", "SSE_MAX_CONNECTIONS_PER_ADDRESS": "1000000"}


class LimitError(RuntimeError):
    """The machine's descriptor limit is too low for the scenario; the message says what to raise."""


def raise_fd_limit(needed: int) -> int:
    """Raises this process's soft RLIMIT_NOFILE, which the servers and clients it starts inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise LimitError(f"needs {needed} file descriptors, the hard limit is {hard}: raise `ulimit -Hn`")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


@dataclass
class Servers:
    run_dir: Path
    direct: bool = False
    sse_env: dict[str, str] = field(default_factory=dict)
    # nginx reaches the service over a Unix socket instead of loopback TCP (not with `direct`).
    unix_upstream: bool = False
    redis: RedisServer = field(init=False)
    sse: SseService = field(init=False)
    nginx: Nginx | None = field(init=False, default=None)

    def start(self) -> Servers:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, free_port())
        uds = self.run_dir / "sse.sock" if self.unix_upstream and not self.direct else None
        self.sse = SseService(
            self.run_dir, self.redis.url, free_port(), env={**BENCH_SSE_ENV, **self.sse_env}, uds=uds
        )
        try:
            self.redis.start()
            self.sse.start()
            if not self.direct:
                static = self.run_dir / "static"
                static.mkdir(exist_ok=True)
                self.nginx = Nginx(
                    self.run_dir,
                    free_port(),
                    sse_upstream=self.sse.upstream,
                    # Nothing listens there: the benchmark never asks for a Django page.
                    django_upstream=f"127.0.0.1:{free_port()}",
                    static_root=static,
                ).start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def port(self) -> int:
        """Where the load client connects: nginx, or the service itself with --direct."""
        return self.nginx.port if self.nginx is not None else self.sse.port

    def pids(self) -> dict[str, list[int]]:
        """Process groups as reported: nginx is its master plus the workers of the moment."""
        groups = {"service": [_pid(self.sse.process)], "redis": [_pid(self.redis.process)]}
        groups["nginx"] = with_descendants([_pid(self.nginx.process)]) if self.nginx is not None else []
        return groups

    def service_log(self) -> str:
        process = self.sse.process
        return process.log_path.read_text(errors="replace") if process is not None else ""

    def stop(self) -> None:
        for part in (self.nginx, getattr(self, "sse", None), getattr(self, "redis", None)):
            if part is not None:
                part.stop()


def _pid(process: Process | None) -> int:
    if process is None:
        raise RuntimeError("server not started")
    return process.pid
