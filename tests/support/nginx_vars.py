"""Values for the nginx template when nginx runs as this user on loopback, as the deploy tests run it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path


def local_nginx_vars(tmp_path: Path, sse_upstream: str, listen_port: int) -> dict[str, str]:
    """The template's variables for an nginx run by this user on loopback, with run files in tmp_path."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return {
        "NGINX_LISTEN": f"127.0.0.1:{listen_port}",
        "NGINX_USER": pwd.getpwuid(os.geteuid()).pw_name,
        "NGINX_RUN_DIR": str(run_dir),
        "NGINX_STATIC_ROOT": str(tmp_path / "static"),
        "SSE_UPSTREAM": sse_upstream,
        "DJANGO_UPSTREAM": f"unix:{tmp_path / 'django.sock'}",
    }
