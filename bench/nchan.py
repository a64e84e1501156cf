"""The peer: nginx + nchan on the bench's own redis-server, started fresh per scenario like the project.

nchan is the C answer to the same job (Redis-backed push to EventSource subscribers, inside nginx), so
the same scenarios and load client against it give each project figure a ratio on this very machine.
Its module comes from Debian (`scripts/install-system-deps bench` installs libnginx-mod-nchan, which
runs on the nginx that nginx-light installs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devstack.processes import Process, StartError, free_port, wait_until
from devstack.publishing import STREAM_MAXLEN
from devstack.services import REPO, RedisServer, http_status, nginx_binary

from .procstat import with_descendants
from .system import started_pid

NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
TEMPLATE = Path(__file__).resolve().parent / "nchan.conf.template"
PROJECT_TEMPLATE = REPO / "nginx" / "nginx.conf.template"
# Copied from the project's template, so both nginx have the same workers and connection limits.
WORKER_SETTINGS = ("worker_processes", "worker_rlimit_nofile", "worker_connections")


def project_worker_settings() -> dict[str, str]:
    text = PROJECT_TEMPLATE.read_text()
    settings = {}
    for name in WORKER_SETTINGS:
        found = re.search(rf"^\s*{name}\s+(\S+);", text, re.MULTILINE)
        if found is None:
            raise StartError(f"{PROJECT_TEMPLATE} sets no {name}")
        settings[name] = found[1]
    return settings


def render(values: dict[str, str]) -> str:
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    left = re.findall(r"\$\{NCHAN_\w+\}", text)
    if left:
        raise ValueError(f"no value for {', '.join(sorted(set(left)))}")
    return text


@dataclass
class NchanServers:
    """redis-server and nginx with nchan; `server` in the figures is nginx (nchan runs inside it)."""

    name: ClassVar[str] = "nchan"
    memory_groups: ClassVar[tuple[str, ...]] = ("nginx",)
    path_prefix: ClassVar[str] = "/sub/"
    # nchan's first bytes on an EventSource stream.
    ready_marker: ClassVar[str] = ": hi\n"
    run_dir: Path
    redis: RedisServer = field(init=False)
    nginx: Process | None = field(init=False, default=None)
    port: int = field(init=False, default=0)

    def start(self) -> NchanServers:
        if not NCHAN_MODULE.exists():
            raise StartError(f"no {NCHAN_MODULE}: run `scripts/install-system-deps bench`")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, free_port())
        self.port = free_port()
        try:
            self.redis.start()
            config = self._config()
            args = [nginx_binary(), "-e", "stderr", "-c", str(config), "-g", "daemon off;"]
            self.nginx = Process.start("nginx-nchan", args, self.run_dir)
            wait_until(self._healthy, 10, "nginx with nchan", self.nginx)
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        return http_status(self.port, "/nginx-health") == 200

    def _config(self) -> Path:
        nginx_dir = self.run_dir / "nginx"
        nginx_dir.mkdir(exist_ok=True)
        workers = project_worker_settings()
        values = {
            "NCHAN_MODULE": str(NCHAN_MODULE),
            "NCHAN_RUN_DIR": str(nginx_dir),
            "NCHAN_PORT": str(self.port),
            "NCHAN_REDIS_PORT": str(self.redis.port),
            "NCHAN_MESSAGE_BUFFER_LENGTH": str(STREAM_MAXLEN),
            **{f"NCHAN_{name.upper()}": value for name, value in workers.items()},
        }
        config = nginx_dir / "nginx.conf"
        config.write_text(render(values))
        return config

    def publish_target(self) -> dict[str, Any]:
        """What the publisher process posts to: nchan's HTTP publisher location."""
        return {"nchan_port": self.port, "path_prefix": "/pub/"}

    def pids(self) -> dict[str, list[int]]:
        if self.nginx is None:
            raise RuntimeError("nginx not started")
        return {"redis": [started_pid(self.redis.process)], "nginx": with_descendants([self.nginx.pid])}

    def streams(self) -> dict[str, int]:
        return {}

    def service_log(self) -> str:
        return ""

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        if hasattr(self, "redis"):
            self.redis.stop()
