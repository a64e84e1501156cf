"""Redis names, as the wire contract (docs/wire-contract.md) defines them. The only place that spells them."""

from __future__ import annotations


def pubsub_channel(prefix: str, channel: str) -> str:
    # The braces are a Redis Cluster hash tag: a channel's keys share a slot.
    return f"{prefix}:{{{channel}}}"


def stream_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:events"


def trimmed_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:trimmed"


def idempotency_key(prefix: str, channel: str) -> str:
    """Hash: the idempotency keys of the channel's recent publishes, each to the id it got."""
    return f"{prefix}:{{{channel}}}:idempotency"


def idempotency_times_key(prefix: str, channel: str) -> str:
    """Sorted set: the same keys, scored by their publication time (ms), so old ones are forgotten."""
    return f"{prefix}:{{{channel}}}:idempotency:times"


def presence_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:presence"


def presence_count_key(prefix: str, channel: str, process: str) -> str:
    return f"{prefix}:{{{channel}}}:presence:{process}"


def presence_members_key(prefix: str, channel: str, process: str) -> str:
    """JSON `{"<user pk>": "<name>"}`: who listens through `process`, on channels that list members."""
    return f"{prefix}:{{{channel}}}:members:{process}"


def ticket_key(prefix: str, token_hash: str) -> str:
    """A ticket, stored under the SHA-256 hex of its token, never the token itself."""
    return f"{prefix}:ticket:{token_hash}"


def ended_session_key(prefix: str, session_hash: str) -> str:
    """Set when the Django session with this SHA-256 hex logged out: tickets it got are refused."""
    return f"{prefix}:ended-session:{session_hash}"


def user_tickets_key(prefix: str, user_id: str) -> str:
    """Sorted set of a user's ticket hashes, scored by expiry time, so they can all be revoked."""
    return f"{prefix}:user-tickets:{user_id}"


def policies_key(prefix: str) -> str:
    """The policy table the SSE service runs with (canonical JSON), written at its start."""
    return f"{prefix}:policies"


def control_channel(prefix: str) -> str:
    """Pub/sub channel every SSE process listens to: `revoke-user <pk>`."""
    return f"{prefix}:control"
