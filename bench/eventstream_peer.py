"""The second peer: django-eventstream (the Python library Django teams pick for SSE) with its Redis
backend, served by daphne as its README says, on the bench's own redis-server, started fresh per
scenario like the others.

Clients connect to daphne itself: the README puts no proxy in front. The publisher sends what
`django_eventstream.send_event` sends with `EVENTSTREAM_REDIS` set (`bench.publisher`). It runs in
the bench's own virtualenv, `bench/.venv` (or `SSE_BENCH_PEERS_VENV`: the version matrix keeps one
inside its Debian 13 root), which `make bench` fills from `bench/requirements-peers.txt`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devstack.processes import Process, StartError, free_port, wait_until
from devstack.services import RedisServer, http_status

from .procstat import with_descendants
from .system import started_pid

BENCH_DIR = Path(__file__).resolve().parent
PEERS_VENV = Path(os.environ.get("SSE_BENCH_PEERS_VENV") or BENCH_DIR / ".venv")
DAPHNE = PEERS_VENV / "bin" / "daphne"


@dataclass
class EventstreamServers:
    """redis-server and daphne serving django-eventstream; `server` in the figures is daphne."""

    name: ClassVar[str] = "django-eventstream"
    memory_groups: ClassVar[tuple[str, ...]] = ("daphne",)
    path_prefix: ClassVar[str] = "/events/"
    # django-eventstream's first event on every stream.
    ready_marker: ClassVar[str] = "event: stream-open\n"
    run_dir: Path
    redis: RedisServer = field(init=False)
    daphne: Process | None = field(init=False, default=None)
    port: int = field(init=False, default=0)

    def start(self) -> EventstreamServers:
        if not DAPHNE.exists():
            raise StartError(f"no {DAPHNE}: `make bench` installs bench/requirements-peers.txt there")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, free_port())
        self.port = free_port()
        try:
            self.redis.start()
            args = [str(DAPHNE), "-b", "127.0.0.1", "-p", str(self.port), "eventstream_site.asgi:application"]
            env = {
                "BENCH_REDIS_PORT": str(self.redis.port),
                "DJANGO_SETTINGS_MODULE": "eventstream_site.settings",
            }
            self.daphne = Process.start("daphne", args, self.run_dir, env=env, cwd=BENCH_DIR)
            wait_until(lambda: http_status(self.port, "/health") == 200, 20, "daphne", self.daphne)
        except BaseException:
            self.stop()
            raise
        return self

    def publish_target(self) -> dict[str, Any]:
        """django-eventstream's own Redis channel, as `send_event` publishes to it."""
        return {"eventstream_redis_port": self.redis.port}

    def pids(self) -> dict[str, list[int]]:
        if self.daphne is None:
            raise RuntimeError("daphne not started")
        return {"redis": [started_pid(self.redis.process)], "daphne": with_descendants([self.daphne.pid])}

    def streams(self) -> dict[str, int]:
        return {}

    def service_log(self) -> str:
        return ""

    def stop(self) -> None:
        if self.daphne is not None:
            self.daphne.stop()
        if hasattr(self, "redis"):
            self.redis.stop()
