"""Several SSE services on one Redis behind one nginx: the shape compose's `--scale sse=N` gives.

The stack, the tests that kill or replace a replica and `make bench --replicas` all build it here, so a
replica is named, given its socket and listed in nginx's upstream the same way everywhere.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .processes import free_port
from .services import Nginx, SseService


def replica_name(index: int) -> str:
    """`sse`, `sse-2`, `sse-3`...: the first replica keeps the name of a single service."""
    return "sse" if index == 1 else f"sse-{index}"


def sse_replicas(
    run_dir: Path,
    redis_url: str,
    count: int,
    *,
    env: Mapping[str, str] | None = None,
    unix_socket: bool = False,
    taken: set[int] | None = None,
) -> list[SseService]:
    """`count` services, not started. With `unix_socket`, each listens on `<name>.sock` (cheaper than
    loopback TCP for an nginx on the same host: README, Performance) instead of its port."""
    if count < 1:
        raise ValueError(f"at least one SSE replica, not {count}")
    taken = taken if taken is not None else set()
    services = []
    for index in range(1, count + 1):
        name = replica_name(index)
        uds = _socket_path(run_dir, f"{name}.sock") if unix_socket else None
        port = free_port(taken)
        services.append(SseService(run_dir, redis_url, port, env=dict(env or {}), name=name, uds=uds))
    return services


def nginx_in_front(
    run_dir: Path,
    services: Sequence[SseService],
    *,
    port: int = 0,
    django_upstream: str = "",
    static_root: Path | None = None,
    taken: set[int] | None = None,
) -> Nginx:
    """The production template balancing /sse/ over `services`, not started. Without a Django site
    (`django_upstream` empty) the rest goes to a port nothing listens on, static files to an empty
    directory: for what only streams."""
    taken = taken if taken is not None else set()
    if static_root is None:
        static_root = run_dir / "static"
        static_root.mkdir(parents=True, exist_ok=True)
    return Nginx(
        run_dir,
        port or free_port(taken),
        sse_upstream=",".join(service.upstream for service in services),
        django_upstream=django_upstream or f"127.0.0.1:{free_port(taken)}",
        static_root=static_root,
    )


def _socket_path(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, or a fresh directory under /tmp if that is too long for a Unix socket."""
    path = run_dir.resolve() / name
    if len(str(path).encode()) <= 100:
        return path
    return Path(tempfile.mkdtemp(prefix="devstack-")) / name
