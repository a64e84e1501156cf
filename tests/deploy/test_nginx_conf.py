"""The shipped nginx config, run for real in front of stand-in upstreams on Unix sockets.

The stand-ins record what nginx forwards, so these tests pin the proxying itself: streams pass
unbuffered, probes stay private, upstream connections are reused, static files carry cache headers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.processes import free_port
from devstack.services import nginx_template_values


class _Upstream(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.connection_number = self.server.connections

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(
            {
                "path": self.path,
                "version": self.request_version,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "connection": self.connection_number,
            }
        )
        if self.path.startswith("/sse/"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            self.server.release.wait(10)
            self.wfile.write(b"data: second\n\n")
            self.close_connection = True
            return
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Proxy:
    url: str
    port: int
    sse: _Upstream
    django: _Upstream
    log: Path
    sockets: Path

    def forwarded(self) -> list[str]:
        return [r["path"] for r in self.sse.requests + self.django.requests]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port} within 10 s:\n{log.read_text()}")


@pytest.fixture
def proxy(tmp_path: Path, render: Callable[..., Path], require: Callable[[str], str]) -> Iterator[Proxy]:
    nginx = require("nginx")
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    sockets = Path(os.environ.get("TMPDIR", "/tmp")) / f"deploy-{os.getpid()}-{free_port()}"
    sockets.mkdir()
    run_dir, static = tmp_path / "run", tmp_path / "static"
    run_dir.mkdir()
    static.mkdir()
    (static / "app.css").write_text("body { color: black; }\n")
    port = free_port()
    values = nginx_template_values(
        port,
        run_dir,
        sse_upstream=f"unix:{sockets / 'sse.sock'}",
        django_upstream=f"unix:{sockets / 'django.sock'}",
        static_root=static,
    )
    conf = render(values, tmp_path / "nginx.conf")
    upstreams = [_Upstream(sockets / "sse.sock"), _Upstream(sockets / "django.sock")]
    for upstream in upstreams:
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
    log = tmp_path / "nginx.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [nginx, "-c", str(conf), "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log)
        yield Proxy(f"http://127.0.0.1:{port}", port, *upstreams, log, sockets)
    finally:
        for upstream in upstreams:
            upstream.release.set()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        for upstream in upstreams:
            upstream.shutdown()
            upstream.server_close()
        for path in sockets.iterdir():
            path.unlink()
        sockets.rmdir()


def test_probes_and_metrics_are_not_public(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 404, path
    assert proxy.forwarded() == []


def test_sse_streams_pass_unbuffered_with_forwarding_headers(proxy: Proxy) -> None:
    """The first event reaches the client while the upstream still holds the response open."""
    url = f"{proxy.url}/sse/news"
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "GET", url, headers={"Accept-Encoding": "gzip", "X-Forwarded-For": "6.6.6.6"}
        ) as response,
    ):
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n"
        proxy.sse.release.set()
        assert b"".join(chunks) == b"data: second\n\n"
    (request,) = proxy.sse.requests
    assert request["path"] == "/sse/news"
    assert request["version"] == "HTTP/1.1"
    headers = request["headers"]
    assert "connection" not in headers
    assert headers["host"] == f"127.0.0.1:{proxy.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{proxy.port}"


def test_everything_else_goes_to_django_over_reused_connections(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        for path in ("/", "/demo/?x=1"):
            response = client.get(path, headers={"Host": "example.com:8443"})
            assert response.json() == {"path": path}
    first, second = proxy.django.requests
    assert first["headers"]["host"] == "example.com:8443"
    assert first["connection"] == second["connection"]


def test_static_files_come_from_disk_with_cache_headers(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        response = client.get("/static/app.css")
        assert response.status_code == 200
        assert response.text == "body { color: black; }\n"
        assert response.headers["content-type"].startswith("text/css")
        assert response.headers["cache-control"] == "public, max-age=86400"
        assert client.get("/static/missing.css").status_code == 404
    assert proxy.forwarded() == []


def test_nginx_health_answers_on_loopback(proxy: Proxy) -> None:
    response = httpx.get(f"{proxy.url}/nginx-health", timeout=5)
    assert (response.status_code, response.text) == (200, "ok\n")


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}


def test_every_answer_carries_the_security_headers(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        answers = [client.get("/"), client.get("/static/app.css"), client.get("/static/missing.css")]
        answers.append(client.get("/healthz"))
        with client.stream("GET", "/sse/news") as stream:
            proxy.sse.release.set()
            stream.read()
            answers.append(stream)
    for answer in answers:
        assert {k: answer.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, answer.url
    assert "cache-control" not in answers[0].headers


def test_tickets_in_query_strings_never_reach_the_logs(proxy: Proxy) -> None:
    """The access log has no query strings; nginx's error messages, which quote the request line,
    are off for /sse/ (here the SSE upstream is gone, so nginx would report it)."""
    (proxy.sockets / "sse.sock").unlink()
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        # With no SSE server up nginx drops the connection (444) rather than answer: browsers retry.
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/sse/?channel=user.1&ticket=SECRET-IN-QUERY")
        page = client.get("/?ticket=SECRET-FOR-DJANGO", headers={"Referer": "http://x/?ticket=SECRET-REF"})
    assert page.status_code == 200
    time.sleep(0.2)
    log = proxy.log.read_text()
    assert '"GET /sse/ HTTP/1.1" 444' in log
    assert f"upstream=unix:{proxy.sockets / 'sse.sock'}/502" in log
    assert '"GET / HTTP/1.1" 200' in log
    assert "SECRET" not in log


def test_oversized_request_lines_and_headers_stop_at_nginx(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        long_url = client.get("/sse/?" + "channel=x&" * 1000)
        big_header = client.get("/sse/news", headers={"X-Big": "x" * 9000})
        big_body = client.post("/", content=b"x" * (1024 * 1024 + 1))
    assert (long_url.status_code, big_header.status_code, big_body.status_code) == (414, 400, 413)
    assert proxy.forwarded() == []


class _Replica(socketserver.ThreadingTCPServer):
    """An SSE replica on a TCP address that answers at once and counts what it served."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _ReplicaHandler)
        self.served = 0


class _ReplicaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Replica

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.served += 1
        body = b"data: hello\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_sse_is_balanced_over_every_address_the_upstream_name_resolves_to(
    tmp_path: Path, render: Callable[..., Path], require: Callable[[str], str]
) -> None:
    """As compose's `--scale sse=2`: `sse` resolves to two replicas (here in /etc/hosts, in compose from
    Docker's DNS) when nginx starts, and nginx takes turns between them."""
    nginx, unshare = require("nginx"), require("unshare")
    require("mount")
    assert os.geteuid() == 0, "run as root: this test needs unshare --mount and mount --bind"
    addresses = ("127.0.0.2", "127.0.0.3")
    replicas: list[_Replica] = []
    for address in addresses:
        # The same port on each address, as every replica of a compose service listens alike.
        replica = _Replica((address, replicas[0].server_address[1] if replicas else 0))
        threading.Thread(target=replica.serve_forever, daemon=True).start()
        replicas.append(replica)
    listen = free_port()
    values = nginx_template_values(
        listen,
        tmp_path,
        sse_upstream=f"sse:{replicas[0].server_address[1]}",
        django_upstream=f"unix:{tmp_path / 'django.sock'}",
        static_root=tmp_path / "static",
    )
    conf = render(values, tmp_path / "nginx.conf")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{a} sse\n" for a in addresses))
    script = 'mount --bind "$1" /etc/hosts && exec "$2" -c "$3" -g "daemon off;"'
    arguments = [str(hosts), nginx, str(conf)]
    log = tmp_path / "nginx.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", *arguments],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(listen, process, log)
        # One client connection, so one worker, whose round robin alternates between the two.
        with httpx.Client(base_url=f"http://127.0.0.1:{listen}", timeout=5) as client:
            for _ in range(10):
                response = client.get("/sse/?channel=public.demo")
                assert (response.status_code, response.text) == (200, "data: hello\n\n")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        for replica in replicas:
            replica.shutdown()
            replica.server_close()
    assert [r.served for r in replicas] == [5, 5]
    for address in addresses:
        assert f"upstream={address}:" in log.read_text()
