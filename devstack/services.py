"""Starters for redis-server, the SSE service, the Django site, its outbox relay and nginx, each on a free
port."""

from __future__ import annotations

import http.client
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .processes import Process, StartError, wait_until

REPO = Path(__file__).resolve().parent.parent
KEY_PREFIX = "sse"
NGINX_RENDER = REPO / "nginx" / "render.sh"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.socket_path))


def http_status(where: int | Path, path: str, timeout: float = 2.0) -> int:
    """Status of `GET path` on 127.0.0.1:`where`, or on the Unix socket at `where`."""
    connection: http.client.HTTPConnection
    if isinstance(where, Path):
        connection = _UnixHTTPConnection(where, timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", where, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass
class RedisServer:
    run_dir: Path
    port: int
    persistence: bool = False
    process: Process | None = None
    # Where it listens, and how it is started: a host of the tests' own (`devstack.netns`) has its
    # own address, and is reached from outside it on `unix_socket`.
    bind: str = "127.0.0.1"
    launcher: tuple[str, ...] = ()
    unix_socket: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.bind}:{self.port}/0"

    def client(self) -> redis.Redis:
        if self.unix_socket is not None:
            return redis.Redis(unix_socket_path=str(self.unix_socket), socket_timeout=5)
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> RedisServer:
        data_dir = self.run_dir / f"redis-{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [*self.launcher, "redis-server", "--port", str(self.port), "--bind", self.bind]
        args += ["--dir", str(data_dir), "--appendonly", "yes" if self.persistence else "no", "--save", ""]
        if self.unix_socket is not None:
            args += ["--unixsocket", str(self.unix_socket)]
        if self.bind != "127.0.0.1":
            # An address of a host of the tests' own, reached from their other host only.
            args += ["--protected-mode", "no"]
        self.process = Process.start(f"redis-{self.port}", args, self.run_dir)
        wait_until(self._pong, 10, f"redis-server on port {self.port}", self.process)
        return self

    def _pong(self) -> bool:
        with self.client() as client:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class SseService:
    run_dir: Path
    redis_url: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    name: str = "sse"
    # Listen on this Unix socket instead of 127.0.0.1:`port`: for an nginx on the same host, where it
    # is cheaper than loopback TCP (README, Performance). `port` is then unused.
    uds: Path | None = None
    process: Process | None = None
    # A command it is started under: `ip netns exec NAME` on a host of the tests' own (`devstack.netns`).
    launcher: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """Base URL; on a Unix socket in the `http+unix://` form (requests-unixsocket's), as most
        HTTP clients have no URL for one: `curl --unix-socket PATH http://localhost/readyz`."""
        if self.uds is not None:
            return "http+unix://" + urllib.parse.quote(str(self.uds), safe="")
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> int | Path:
        """Where it listens: the TCP port on 127.0.0.1, or the Unix socket's path."""
        return self.uds if self.uds is not None else self.port

    @property
    def upstream(self) -> str:
        """The address as nginx's `server` directive takes it (`SSE_UPSTREAM`)."""
        return f"unix:{self.uds}" if self.uds is not None else f"127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> SseService:
        args = [*self.launcher, sys.executable, "-m", "uvicorn", "--factory", "sse_service.app:create_app"]
        args += ["--loop", "uvloop", "--http", "httptools"]
        if self.uds is not None:
            if len(str(self.uds).encode()) > 107:
                raise StartError(f"Unix socket path longer than 107 bytes: {self.uds}")
            args += ["--uds", str(self.uds)]
        else:
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        # The service reads X-Forwarded-For itself, from SSE_TRUSTED_PROXIES only.
        args += ["--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "15"]
        env = {"SSE_REDIS_URL": self.redis_url, "SSE_KEY_PREFIX": KEY_PREFIX, **self.env}
        self.process = Process.start(self.name, args, self.run_dir, env=env, cwd=REPO)
        check = (lambda: http_status(self.address, "/readyz") == 200) if wait_ready else self._listening
        wait_until(check, 20, f"the SSE service on {self.upstream}", self.process)
        return self

    def _listening(self) -> bool:
        return http_status(self.address, "/healthz") == 200

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class DjangoSite:
    run_dir: Path
    redis_url: str
    port: int
    overrides: dict[str, str] = field(default_factory=dict)
    process: Process | None = None
    # What the site and its management commands need to reach this stack; one secret key for all.
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_DATABASE_PATH": str(self.run_dir / "db.sqlite3"),
            "DJANGO_STATIC_ROOT": str(self.static_root),
            "REDIS_URL": self.redis_url,
            "SSE_KEY_PREFIX": KEY_PREFIX,
            # Plain HTTP on localhost: Secure cookies would be dropped by non-browser clients.
            "DJANGO_SECURE_COOKIES": "false",
            **self.overrides,
        }

    @property
    def static_root(self) -> Path:
        return self.run_dir / "static"

    def start(self) -> DjangoSite:
        for command in (
            ["migrate", "--noinput"],
            ["create_demo_users"],
            ["collectstatic", "--noinput", "--clear"],
        ):
            self.manage(*command)
        args = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        self.process = Process.start("django", args, self.run_dir, env=self.env, cwd=REPO / "django_site")
        wait_until(lambda: http_status(self.port, "/healthz") == 200, 20, "the Django site", self.process)
        return self

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO / "django_site",
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise StartError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class OutboxRelay:
    """`manage.py sse_relay`: publishes what the site's outbox holds; Prometheus metrics on its port."""

    run_dir: Path
    # The site's environment (DjangoSite.env): the same database and Redis.
    env: dict[str, str]
    metrics_port: int
    name: str = "relay"
    process: Process | None = None
    # A command it is started under: `ip netns exec NAME` on a host of the tests' own (`devstack.netns`).
    launcher: tuple[str, ...] = ()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, wait_ready: bool = True) -> OutboxRelay:
        """Starts it; with `wait_ready`, waits until its metrics answer on this host's loopback (one
        started under a `launcher` answers on its own host's: the caller waits there)."""
        args = [
            *self.launcher,
            sys.executable,
            "manage.py",
            "sse_relay",
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.process = Process.start(self.name, args, self.run_dir, env=self.env, cwd=REPO / "django_site")
        if wait_ready:
            wait_until(self._serving_metrics, 20, "the outbox relay", self.process)
        return self

    def _serving_metrics(self) -> bool:
        return http_status(self.metrics_port, "/metrics") == 200

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Nginx:
    run_dir: Path
    port: int
    sse_upstream: str
    django_upstream: str
    static_root: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def render(self) -> Path:
        """Renders the production template with local values, through the same script compose mirrors."""
        nginx_dir = self.run_dir / "nginx"
        nginx_dir.mkdir(parents=True, exist_ok=True)
        config = nginx_dir / "nginx.conf"
        values = nginx_template_values(
            self.port,
            nginx_dir,
            sse_upstream=self.sse_upstream,
            django_upstream=self.django_upstream,
            static_root=self.static_root,
        )
        subprocess.run(
            ["sh", str(NGINX_RENDER), str(config)],
            env={**os.environ, **values},
            check=True,
            capture_output=True,
        )
        return config

    def start(self) -> Nginx:
        config = self.render()
        args = [nginx_binary(), "-e", "stderr", "-c", str(config), "-g", "daemon off;"]
        self.process = Process.start("nginx", args, self.run_dir)
        wait_until(lambda: http_status(self.port, "/healthz") == 404, 10, "nginx", self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def nginx_template_values(
    port: int, run_dir: Path, *, sse_upstream: str, django_upstream: str, static_root: Path
) -> dict[str, str]:
    """The template's variables (`nginx/render.sh` lists them) for an nginx run by this user on
    127.0.0.1:`port`, its pid and temporary files in `run_dir`, which must exist before nginx starts."""
    return {
        "NGINX_LISTEN": f"127.0.0.1:{port}",
        # The effective user: nginx's `user` directive is ignored unless it runs as root.
        "NGINX_USER": pwd.getpwuid(os.geteuid()).pw_name,
        "NGINX_RUN_DIR": str(run_dir),
        "NGINX_STATIC_ROOT": str(static_root),
        "SSE_UPSTREAM": sse_upstream,
        "DJANGO_UPSTREAM": django_upstream,
    }


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise StartError("nginx is not installed: run `make deps` (apt-get install nginx-light)")
    return found
