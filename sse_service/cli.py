"""`sse-push-service`: the SSE service under uvicorn, with the flags production needs.

    sse-push-service --host 0.0.0.0 --port 8001
    sse-push-service --uds /run/sse-push/sse.sock

Only where to listen is an argument; everything else is configured by the `SSE_*` environment
variables (docs/configuration.md, "Configuration"), read once at start. The fixed flags, and why:
uvloop and httptools (the fastest loop and parser uvicorn has; the benchmark ran on them), no
proxy headers (the service reads `X-Forwarded-For` itself, only from `SSE_TRUSTED_PROXIES`), no
access log (it would log `?ticket=`), and a graceful shutdown bounded by
`--timeout-graceful-shutdown`, after the service has ended its streams within
`SSE_SHUTDOWN_GRACE_SECONDS`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

PROGRAM = "sse-push-service"
APP_FACTORY = "sse_service.app:create_app"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
# Streams end within SSE_SHUTDOWN_GRACE_SECONDS (5 s by default); this is uvicorn's hard cap after that.
DEFAULT_GRACEFUL_SHUTDOWN_SECONDS = 15
# The longest path a Unix socket address holds on Linux (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH_BYTES = 107


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Stream Redis pub/sub to browsers as Server-Sent Events. "
        "Configured by SSE_* environment variables (SSE_REDIS_URL, SSE_KEY_PREFIX, ...).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST})")
    where.add_argument("--uds", metavar="PATH", help="listen on this Unix socket instead of TCP")
    parser.add_argument("--port", type=_port, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=_non_negative_int,
        default=DEFAULT_GRACEFUL_SHUTDOWN_SECONDS,
        metavar="SECONDS",
        help="after SIGTERM, cancel what is still running after this long "
        f"(default {DEFAULT_GRACEFUL_SHUTDOWN_SECONDS})",
    )
    return parser


def uvicorn_options(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """uvicorn.run's keyword arguments for this command line; exits with a usage error if it is wrong."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.uds is not None and args.port is not None:
        parser.error("--port does not go with --uds")
    if args.uds is not None and len(args.uds.encode()) > MAX_SOCKET_PATH_BYTES:
        parser.error(f"--uds path is longer than {MAX_SOCKET_PATH_BYTES} bytes: {args.uds}")
    where: dict[str, Any] = (
        {"uds": args.uds}
        if args.uds is not None
        else {"host": args.host or DEFAULT_HOST, "port": args.port or DEFAULT_PORT}
    )
    return {
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "proxy_headers": False,
        "access_log": False,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        **where,
    }


def main(argv: Sequence[str] | None = None) -> None:
    options = uvicorn_options(argv)
    if "uds" in options and (problem := socket_directory_problem(Path(options["uds"]))):
        # One line naming the path, where uvicorn would end in a traceback from the bind.
        raise SystemExit(f"{PROGRAM}: cannot listen on {options['uds']}: {problem}")
    uvicorn.run(APP_FACTORY, **options)


def socket_directory_problem(socket: Path) -> str | None:
    """Why this process cannot create `socket`, or None. The directory is the host's to make (systemd's
    RuntimeDirectory=, a volume in a container): under /run it is gone after each boot."""
    directory = socket.parent
    if not directory.is_dir():
        return (
            f"directory {directory} does not exist (create it, e.g. with systemd's RuntimeDirectory=sse-push)"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {directory} is not writable by this user (uid {os.geteuid()})"
    return None


def _port(raw: str) -> int:
    port = _non_negative_int(raw)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {raw}")
    return port


def _non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {raw}")
    return value


if __name__ == "__main__":
    main()
