"""The process's Redis client and publish script, created on first use, never at import.

One client (and so one connection pool) per process, keyed by settings.REDIS_URL: tests that
override the setting get a client for their server, and the old one is closed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis
from django.conf import settings
from redis.commands.core import Script

_SCRIPT_PATH = Path(__file__).resolve().parent / "lua" / "publish.lua"
_CLIENT_NAME = "django-publisher"


@dataclass(frozen=True)
class _Connection:
    url: str
    client: redis.Redis
    publish_script: Script


_lock = threading.Lock()
_current: _Connection | None = None


def get_client() -> redis.Redis:
    return _connection().client


def get_publish_script() -> Script:
    """The Lua publish step; runs with EVALSHA and loads itself on NOSCRIPT."""
    return _connection().publish_script


def close() -> None:
    """Close the client; the next call creates a new one."""
    global _current
    with _lock:
        if _current is not None:
            _current.client.close()
            _current = None


@cache
def _script_source() -> bytes:
    return _SCRIPT_PATH.read_bytes()


def _connection() -> _Connection:
    global _current
    url: str = settings.REDIS_URL
    current = _current
    if current is not None and current.url == url:
        return current
    with _lock:
        if _current is None or _current.url != url:
            if _current is not None:
                _current.client.close()
            client = redis.Redis.from_url(url, client_name=_CLIENT_NAME)
            _current = _Connection(url, client, client.register_script(_script_source()))
        return _current
