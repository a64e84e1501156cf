"""Publishes through the project's own atomic publish step (the Lua script the Django site ships)."""

from __future__ import annotations

from pathlib import Path

import redis

LUA = Path(__file__).resolve().parents[2] / "django_site" / "live" / "lua" / "publish.lua"


def publish(
    client: redis.Redis,
    channel: str,
    data: str,
    event: str = "",
    prefix: str = "sse",
    maxlen: int = 1000,
) -> str:
    """`data` is the JSON text; returns the id Redis assigned."""
    script = client.register_script(LUA.read_text())
    keys = [f"{prefix}:{{{channel}}}:events", f"{prefix}:last-id"]
    result = script(keys=keys, args=[f"{prefix}:{{{channel}}}", event, data, maxlen])
    return result.decode() if isinstance(result, bytes) else str(result)
