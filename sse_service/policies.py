"""Policies per channel prefix: one table, read by this service and by the Django site alike.

The table is a JSON file both sides load (each names it in SSE_CHANNEL_POLICIES), an object from
channel-name prefix to that prefix's policy; a channel takes the policy of the longest prefix it
starts with, or the table's default (`""`, private) when none matches:

    {"public.": {"public": true, "history": 1000, "rewind_max": 100, "presence": "who"},
     "room.": {"presence": "who", "join_leave": true, "join_leave_max_members": 100}}

Each field has a default (`Policy`), so an entry names only what differs from the default entry
(`""`, whose own unnamed fields take `Policy`'s defaults); a field neither side knows
is an error, not ignored, so a typo cannot keep a default. A setting the service grows per prefix is
one more field here and in the Django side's copy (`django_sse_push/policies.py`), which must parse
every table to the same canonical form (`PolicyTable.canonical`): the service writes that form to
Redis at start (`RedisNames.policies_key`), where Django's `manage.py check --deploy` compares it
with its own. Without a file, the table is today's settings: each SSE_PUBLIC_PREFIXES entry public.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Past a second, a "delay" is a stall a client would take for a broken stream.
MAX_WRITE_DELAY_MS = 1000


class PolicyError(ValueError):
    """The table does not parse; the message says where."""


class Presence(Enum):
    """What a channel's presence tells: how many listen, or also who (user pk and display name)."""

    COUNT = "count"
    WHO = "who"


@dataclass(frozen=True, slots=True)
class Policy:
    public: bool = False
    # Events kept per channel (Django trims its stream to this many as it publishes).
    history: int = 1000
    # The most `rewind=N` may ask for; 0 refuses rewind on these channels.
    rewind_max: int = 100
    presence: Presence = Presence.COUNT
    # `presence.join` and `presence.leave` events on the channel itself, while it has at most
    # `join_leave_max_members` members (past that, only counts are kept).
    join_leave: bool = False
    join_leave_max_members: int = 100
    # Milliseconds within which a stream's events on these channels go out in one write; None: the
    # service's SSE_WRITE_DELAY_MS.
    write_delay_ms: int | None = None

    @property
    def names_listeners(self) -> bool:
        """Whether a stream's ticket, when it has one, tells who listens (for presence or join/leave)."""
        return self.presence is Presence.WHO or self.join_leave


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
    try:
        return Presence(value)
    except ValueError:
        raise PolicyError(f"must be one of {', '.join(p.value for p in Presence)}") from None


def _write_delay(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WRITE_DELAY_MS:
        raise PolicyError(f"must be a whole number of milliseconds from 0 to {MAX_WRITE_DELAY_MS}")
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


@dataclass(frozen=True, slots=True)
class PolicyTable:
    # Longest prefix first, so the first match is the one that applies.
    entries: tuple[tuple[str, Policy], ...]
    default: Policy = Policy()

    def for_channel(self, channel: str) -> Policy:
        for prefix, policy in self.entries:
            if channel.startswith(prefix):
                return policy
        return self.default

    def is_public(self, channel: str) -> bool:
        return self.for_channel(channel).public

    def write_delay_seconds(self, channel: str, default_ms: float) -> float:
        """How long the channel's events wait to go out together: its prefix's, or `default_ms`."""
        return _write_delay_ms(self.for_channel(channel), default_ms) / 1000

    def delays_writes(self, default_ms: float) -> bool:
        """Whether any channel's events may wait at all."""
        policies = (self.default, *(policy for _, policy in self.entries))
        return any(_write_delay_ms(policy, default_ms) for policy in policies)

    def canonical(self) -> str:
        """The table as one JSON text, equal on both sides for the same table, whatever its spelling."""
        table = {"": _plain(self.default)} | {prefix: _plain(policy) for prefix, policy in self.entries}
        return json.dumps(table, sort_keys=True, separators=(",", ":"))


def _write_delay_ms(policy: Policy, default_ms: float) -> float:
    return default_ms if policy.write_delay_ms is None else policy.write_delay_ms


def _plain(policy: Policy) -> dict[str, object]:
    return {name: value.value if isinstance(value, Enum) else value for name, value in asdict(policy).items()}


class RewindError(ValueError):
    """A `rewind` parameter that is not a count this stream's channels allow."""


def rewind_counts(raw: str, channels: Sequence[str], table: PolicyTable) -> dict[str, int]:
    """How many past events `rewind=<raw>` replays per channel: N, capped by each channel's
    `rewind_max`. N over every one of those maximums is refused rather than silently cut to nothing."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise RewindError(f"rewind must be a whole number of events, got {raw[:20]!r}")
    count = int(raw)
    maximums = {channel: table.for_channel(channel).rewind_max for channel in channels}
    if count > max(maximums.values()):
        raise RewindError(
            f"rewind={count} is over the maximum of {max(maximums.values())} for these channels"
        )
    return {channel: min(count, top) for channel, top in maximums.items() if min(count, top) > 0}


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


def load_table(path: str) -> PolicyTable:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    return parse_table(text)


def default_table(public_prefixes: Sequence[str]) -> PolicyTable:
    """Today's settings as a table: each public prefix public, everything else private."""
    public = Policy(public=True)
    return PolicyTable(tuple(sorted(((p, public) for p in public_prefixes), key=lambda e: -len(e[0]))))


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
