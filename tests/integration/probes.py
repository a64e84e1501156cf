"""What tests read off a running SSE service besides its streams: metrics, memory, raw sockets."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx

from devstack.services import SseService


async def scrape(service: SseService) -> dict[str, float]:
    """The service's Prometheus samples, by name (labels included)."""
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = re.findall(r"^(sse_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", response.text, re.MULTILINE)
    return {name: float(value) for name, value in samples}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_stalled_client(port: int, path: str, headers: str = "") -> socket.socket:
    """A client that sends its request and never reads: its receive window stays tiny and full."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response, as far as it got."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)
