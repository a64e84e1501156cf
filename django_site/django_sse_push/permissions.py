"""Who may listen to which channel. Tickets are issued only for channels this allows.

A channel is public iff its prefix's policy says so (policies.py; the SSE service reads the same
table, so public channels need no ticket at all). Every other channel is private,
and `can_read_channel` asks the hook named by SSE_CHANNEL_PERMISSION, a dotted path to a
`(user, channel) -> bool` function. Point it at your own to change the rules; revoke the user's
tickets (django_sse_push.tickets.revoke_user_tickets) when the answer changes for someone already listening.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from django_sse_push.conf import push_settings
from django_sse_push.policies import policy_for

Permission = Callable[[Any, str], bool]


def is_public(channel: str) -> bool:
    return policy_for(channel).public


def can_read_channel(user: Any, channel: str) -> bool:
    """Public channels are open to all; private ones are up to the configured hook."""
    return is_public(channel) or bool(_hook(push_settings().CHANNEL_PERMISSION)(user, channel))


def default_can_read_channel(user: Any, channel: str) -> bool:
    """Public channels: anyone. `user.<pk>` and `user.<pk>.*`: that user. `staff.*`: staff. Else no one."""
    if is_public(channel):
        return True
    if not (user.is_authenticated and user.is_active):
        return False
    if channel.startswith("user."):
        return channel.removeprefix("user.").split(".", 1)[0] == str(user.pk)
    if channel.startswith("staff."):
        return bool(user.is_staff)
    return False


@cache
def _hook(path: str) -> Permission:
    hook: Permission = import_string(path)
    return hook
