"""The forms the app's settings must take, in one place for its system checks and for a project's
settings module that reads them from the environment (importable before Django is set up)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from redis.connection import parse_url

REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_NODE_RE = re.compile(r"[^\s:]+:\d{1,5}")
# Braces are Redis Cluster hash tags; whitespace would split the names.
KEY_PREFIX_RE = re.compile(r"[^\s{}]+")
# A public prefix is the start of a channel name.
CHANNEL_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def redis_url_problem(url: str) -> str | None:
    """Why redis-py would refuse `url` when the first client is made, or None: read as redis-py
    reads it, so a URL that passes here does not raise on every use (a port of `63a9`, say)."""
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        return "does not start with redis://, rediss:// or unix://"
    try:
        parse_url(url)
    except ValueError as exc:
        return f"is not a URL redis-py accepts: {exc}"
    return None


def stream_url_problem(url: str) -> str | None:
    """Why `url` cannot be where pages open their streams, or None. live.js and htmx-stream.js add
    `?channel=...` to it, so it has no query or fragment; another origin is `http(s)://host[:port]/...`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "has a query or fragment (the page adds ?channel=...)"
    elsewhere = bool(parts.scheme or parts.netloc)
    if elsewhere and (parts.scheme not in ("http", "https") or not parts.hostname):
        return "is on another origin but is not http(s)://host[:port]/path/"
    if not parts.path.startswith("/") or not parts.path.endswith("/"):
        return "is not a path from / to / (e.g. /sse/) or an http(s) URL ending in /"
    return None
