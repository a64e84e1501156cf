"""Policies per channel prefix, the Django side: the table the SSE service reads too.

SSE_CHANNEL_POLICIES names a JSON file, the same file the service's SSE_CHANNEL_POLICIES names: an
object from channel-name prefix to policy; a channel takes the longest prefix it starts with, else
the default entry `""` (private). Each entry names only what differs from the default entry, whose
own unnamed fields take `Policy`'s defaults; a field not known here is an error. Unset, the table is
today's settings: SSE_PUBLIC_PREFIXES public with SSE_STREAM_MAXLEN events of history.

This module does not import the service: it parses the table itself, to the same canonical JSON the
service writes to Redis at start (`<prefix>:policies`); `manage.py check --deploy` compares the two
(django_sse_push.E013), and `manage.py check` reports a table that does not parse (E012).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_sse_push.conf import push_settings

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PRESENCE_MODES = ("count", "who")


class PolicyError(ImproperlyConfigured):
    """SSE_CHANNEL_POLICIES does not parse; the message says where."""


@dataclass(frozen=True)
class Policy:
    public: bool = False
    history: int = 1000
    rewind_max: int = 100
    presence: str = "count"  # or "who": members listed (presence.who)
    join_leave: bool = False
    join_leave_max_members: int = 100
    # The service's, per prefix (None: its SSE_WRITE_DELAY_MS); Django only checks and compares it.
    write_delay_ms: int | None = None


def _boolean(value: object) -> object:
    if not isinstance(value, bool):
        raise PolicyError("must be true or false")
    return value


def _count(minimum: int) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PolicyError(f"must be a whole number of at least {minimum}")
        return value

    return parse


def _presence(value: object) -> object:
    if value not in PRESENCE_MODES:
        raise PolicyError(f"must be one of {', '.join(PRESENCE_MODES)}")
    return value


def _write_delay(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise PolicyError("must be a whole number of milliseconds from 0 to 1000")
    return value


_FIELDS: dict[str, Callable[[object], object]] = {
    "public": _boolean,
    "history": _count(1),
    "rewind_max": _count(0),
    "presence": _presence,
    "join_leave": _boolean,
    "join_leave_max_members": _count(1),
    "write_delay_ms": _write_delay,
}


@dataclass(frozen=True)
class PolicyTable:
    entries: tuple[tuple[str, Policy], ...]  # longest prefix first
    default: Policy = Policy()

    def for_channel(self, channel: str) -> Policy:
        for prefix, policy in self.entries:
            if channel.startswith(prefix):
                return policy
        return self.default

    def canonical(self) -> str:
        """One JSON text per table, whatever its spelling: what the service writes to Redis."""
        table = {"": asdict(self.default)} | {prefix: asdict(policy) for prefix, policy in self.entries}
        return json.dumps(table, sort_keys=True, separators=(",", ":"))


def parse_table(text: str) -> PolicyTable:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise PolicyError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError("must be a JSON object from channel prefix to policy")
    default = _policy("", raw.pop("", {}), Policy())
    entries = []
    for prefix, entry in raw.items():
        if not _PREFIX.fullmatch(prefix):
            raise PolicyError(f"{prefix!r} cannot start a channel name")
        entries.append((prefix, _policy(prefix, entry, default)))
    entries.sort(key=lambda item: len(item[0]), reverse=True)
    return PolicyTable(tuple(entries), default)


def default_table(public_prefixes: Sequence[str], history: int) -> PolicyTable:
    """Today's settings as a table."""
    private = Policy(history=history)
    public = replace(private, public=True)
    entries = sorted(((prefix, public) for prefix in public_prefixes), key=lambda e: -len(e[0]))
    return PolicyTable(tuple(entries), private)


def policy_table() -> PolicyTable:
    """The table in force; raises PolicyError naming SSE_CHANNEL_POLICIES when it does not parse."""
    configured = push_settings()
    path = configured.CHANNEL_POLICIES
    if not path:
        return default_table(configured.PUBLIC_PREFIXES, configured.STREAM_MAXLEN)
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise PolicyError(f"SSE_CHANNEL_POLICIES={path!r}: cannot read it: {exc.strerror}") from None
    return _load(path, stamp)


def policy_for(channel: str) -> Policy:
    return policy_table().for_channel(channel)


@lru_cache(maxsize=8)
def _load(path: str, stamp: int) -> PolicyTable:
    """Parsed once per version of the file (`stamp`: its modification time)."""
    try:
        with open(path, encoding="utf-8") as file:
            return parse_table(file.read())
    except OSError as exc:
        raise PolicyError(f"SSE_CHANNEL_POLICIES={path!r}: cannot read it: {exc.strerror}") from None
    except PolicyError as exc:
        raise PolicyError(f"SSE_CHANNEL_POLICIES={path!r}: {exc}") from None


def _policy(prefix: str, entry: object, base: Policy) -> Policy:
    if not isinstance(entry, dict):
        raise PolicyError(f"{prefix!r}: the policy must be a JSON object")
    unknown = sorted(set(entry) - {f.name for f in fields(Policy)})
    if unknown:
        raise PolicyError(f"{prefix!r}: unknown field {unknown[0]!r}; known: {', '.join(_FIELDS)}")
    values: dict[str, Any] = {}
    for name, value in entry.items():
        try:
            values[name] = _FIELDS[name](value)
        except PolicyError as exc:
            raise PolicyError(f"{prefix!r}: {name} {exc}") from None
    return replace(base, **values)
