"""Configuration, read once from environment variables into one typed, frozen object."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from urllib.parse import urlsplit

from .policies import MAX_WRITE_DELAY_MS, PolicyError, PolicyTable, default_table, load_table

ENV_PREFIX = "SSE_"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be zero or a positive number")
    return value


def _write_delay_ms(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= MAX_WRITE_DELAY_MS:
        raise ValueError(f"must be between 0 and {MAX_WRITE_DELAY_MS} (milliseconds)")
    return value


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return raw


def _cluster_nodes(raw: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in _items(raw):
        host, colon, port = item.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def _key_prefix(raw: str) -> str:
    if not raw or any(c in raw for c in "{}\r\n "):
        raise ValueError("must be non-empty, without braces, spaces or newlines")
    return raw


def _items(raw: str) -> list[str]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ValueError("must list at least one item, comma-separated")
    return items


def _channel_prefixes(raw: str) -> tuple[str, ...]:
    prefixes = _items(raw)
    for prefix in prefixes:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", prefix):
            raise ValueError(f"{prefix!r} cannot start a channel name")
    return tuple(prefixes)


def _policy_table(raw: str) -> PolicyTable:
    try:
        return load_table(raw)
    except PolicyError as exc:
        raise ValueError(str(exc)) from None


def _networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(item, strict=False) for item in _items(raw))


def _origins(raw: str) -> tuple[str, ...]:
    """Origins as browsers send them in `Origin`: scheme://host[:port], nothing after. Not `*`: the
    streams are read with the ticket cookie, and any site could then read a visitor's private ones."""
    origins = _items(raw)
    for origin in origins:
        if origin == "*":
            raise ValueError("'*' would let any site read its visitors' private streams: list the origins")
        try:
            parts = urlsplit(origin)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError as exc:
            raise ValueError(f"{origin!r} is not an origin: {exc}") from None
        exact = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme not in ("http", "https") or not parts.hostname or origin != exact:
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port], e.g. http://127.0.0.1:8000"
            )
    return tuple(origins)


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


# Each field's env var is SSE_<FIELD NAME IN CAPITALS>; the parser for it is listed here.
_PARSERS: dict[str, Callable[[str], object]] = {
    "redis_url": _redis_url,
    "redis_cluster_nodes": _cluster_nodes,
    "key_prefix": _key_prefix,
    "heartbeat_seconds": _positive_float,
    "retry_ms": _positive_int,
    "max_payload_bytes": _positive_int,
    "max_channels_per_connection": _positive_int,
    "max_channels_per_process": _positive_int,
    "reserved_private_channels": _non_negative_int,
    "public_prefixes": _channel_prefixes,
    "channel_policies": _policy_table,
    "max_connections_per_user": _positive_int,
    "max_connections_per_address": _positive_int,
    "trusted_proxies": _networks,
    "send_buffer_bytes": _positive_int,
    "shutdown_grace_seconds": _non_negative_float,
    "drain_seconds": _non_negative_float,
    "redis_silence_seconds": _positive_float,
    "presence_seconds": _positive_float,
    "log_level": _log_level,
    "cors_origins": _origins,
    "write_delay_ms": _write_delay_ms,
}


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Start-up nodes of a Redis Cluster (host, port); when given, redis_url is not used.
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    # Must equal the Django site's SSE_KEY_PREFIX: it names every key and channel of the contract.
    key_prefix: str = "sse"
    heartbeat_seconds: float = 15.0
    # The `retry:` hint: how long a browser waits before it reconnects.
    retry_ms: int = 3000
    max_payload_bytes: int = 65536
    max_channels_per_connection: int = 32
    # Distinct channels one process serves at a time; a stream that would add more is refused (503).
    max_channels_per_process: int = 10_000
    # Of those, how many only streams whose new channels are all private (ticketed) may take, so
    # that made-up public names cannot crowd out logged-in users' channels (limits.py); unset, a
    # fifth of them (`private_reserve`).
    reserved_private_channels: int | None = None
    # A channel is public iff its name starts with one of these; must equal Django's SSE_PUBLIC_PREFIXES.
    public_prefixes: tuple[str, ...] = ("public.",)
    # Policies per channel prefix (policies.py), from the JSON file this names; must be the file the
    # Django site's SSE_CHANNEL_POLICIES names. Unset: SSE_PUBLIC_PREFIXES public, defaults for the rest.
    channel_policies: PolicyTable | None = None
    # Open streams per ticket holder (user, or ticket if anonymous) and per client address, per process.
    max_connections_per_user: int = 16
    max_connections_per_address: int = 256
    # Direct peers whose X-Forwarded-For is believed (nginx); addresses or networks.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = (ip_network("127.0.0.1"), ip_network("::1"))
    # Bytes a connection may have waiting while its socket is paused before it is cut off.
    send_buffer_bytes: int = 1_048_576
    # How long streams get to end cleanly after SIGTERM before they are cancelled.
    shutdown_grace_seconds: float = 5.0
    # Over how long, after SIGTERM, the process ends its streams (a paced drain, `drain.py`); 0 ends
    # them all at once. Keep it under the orchestrator's grace period less SSE_SHUTDOWN_GRACE_SECONDS.
    drain_seconds: float = 0.0
    # How long a Redis connection may go unanswered (data or keepalive probes not acknowledged) before
    # it is taken for dead and reconnected: a partition leaves the socket open and silent.
    redis_silence_seconds: float = 10.0
    # How often listener counts are written to Redis for Django's subscriber_count().
    presence_seconds: float = 5.0
    log_level: str = "INFO"
    # Pages on these origins may read streams with their cookies (CORS with credentials): a site
    # served apart from the service in development, where no nginx puts both on one origin.
    cors_origins: tuple[str, ...] = ()
    # Events arriving within this many milliseconds go out to each stream in one write: less CPU
    # per delivery, at up to this much more latency. 0 writes each batch from Redis as it comes.
    write_delay_ms: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = ENV_PREFIX + field.name.upper()
            raw = environ.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field.name] = _PARSERS[field.name](raw.strip())
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
        if "channel_policies" in values and "public_prefixes" in values:
            raise SettingsError(
                f"{ENV_PREFIX}PUBLIC_PREFIXES and {ENV_PREFIX}CHANNEL_POLICIES are both set: say which "
                f"channels are public in the policy table alone"
            )
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.private_reserve >= settings.max_channels_per_process:
            raise SettingsError(
                f"{ENV_PREFIX}RESERVED_PRIVATE_CHANNELS={settings.private_reserve} is invalid: must be less "
                f"than {ENV_PREFIX}MAX_CHANNELS_PER_PROCESS ({settings.max_channels_per_process})"
            )
        return settings

    @property
    def policies(self) -> PolicyTable:
        """The table in force: the file's, or today's settings as a table."""
        if self.channel_policies is not None:
            return self.channel_policies
        return default_table(self.public_prefixes)

    @property
    def private_reserve(self) -> int:
        """Channels only streams adding private channels alone may take (`reserved_private_channels`)."""
        if self.reserved_private_channels is not None:
            return self.reserved_private_channels
        return self.max_channels_per_process // 5
