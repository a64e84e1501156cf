"""Who listens to a channel right now, summed over every SSE process and replica.

The SSE processes keep this in Redis (docs/wire-contract.md): per channel, the set of processes
with listeners, each process's count, and, on channels whose policy says `"presence": "who"`, each
process's members as JSON `{"<user pk>": "<name>"}`. A process that stops refreshing drops out when
its keys expire (3 x the service's SSE_PRESENCE_SECONDS). Names come from the SSE_DISPLAY_NAME hook,
called when a ticket is issued and carried in it, so the service never calls Django.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from django_sse_push import keys
from django_sse_push._redis import get_client
from django_sse_push.conf import push_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Member:
    user: str  # the user's pk, as text
    name: str


def subscriber_count(channel: str) -> int:
    client = get_client()
    prefix: str = push_settings().KEY_PREFIX
    processes = [p.decode() for p in client.smembers(keys.presence_key(prefix, channel))]
    if not processes:
        return 0
    counts = client.mget([keys.presence_count_key(prefix, channel, p) for p in processes])
    return sum(int(count) for count in counts if count is not None)


def who(channel: str) -> list[Member]:
    """The logged-in users listening on `channel`, once each, by pk; anonymous listeners are not
    listed. Empty unless the channel's policy lists members (`"presence": "who"`)."""
    client = get_client()
    prefix: str = push_settings().KEY_PREFIX
    processes = [p.decode() for p in client.smembers(keys.presence_key(prefix, channel))]
    if not processes:
        return []
    members: dict[str, str] = {}
    for raw in client.mget([keys.presence_members_key(prefix, channel, p) for p in processes]):
        if raw is None:
            continue
        try:
            listed = json.loads(raw)
        except ValueError:
            logger.warning("ignoring malformed presence members on %s: %r", channel, raw[:80])
            continue
        members.update((str(user), str(name)) for user, name in listed.items())
    return sorted(Member(user, name) for user, name in members.items())


def default_display_name(user: Any) -> str:
    """The full name if the user model has one, else the username."""
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return str(full or user.get_username())


def display_name(user: Any) -> str:
    """What SSE_DISPLAY_NAME says for `user`; "" when the hook raises (logged): a ticket is still
    issued, without a name, rather than the page's ticket request failing."""
    path = push_settings().DISPLAY_NAME
    try:
        return str(_hook(path)(user))
    except Exception:
        logger.exception("SSE_DISPLAY_NAME %s raised for user %s: the ticket carries no name", path, user.pk)
        return ""


@cache
def _hook(path: str) -> Any:
    return import_string(path)
