"""Model changes to browsers: `post_save` → `publish_on_commit`, sent only if the transaction commits.

Each change goes out twice: as JSON for live.js pages (`/board/`), and as an HTML fragment for htmx
pages (`/board/htmx/`) on channels of their own, so neither kind of page receives what it ignores.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model

from demo.models import BoardItem, Notification
from django_sse_push.htmx import publish_fragment
from django_sse_push.publish import publish_on_commit

BOARD_CHANNEL = "public.board"
BOARD_FRAGMENT_CHANNEL = "public.board.html"
ANNOUNCEMENT_CHANNEL = "public.announcements"
_MENTION = re.compile(r"@([\w.@+-]+)")


def board_item_saved(sender: type[BoardItem], instance: BoardItem, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    publish_on_commit(BOARD_CHANNEL, instance.as_event(), event="board.item")
    publish_fragment(
        BOARD_FRAGMENT_CHANNEL,
        "demo/fragments/board_item.html",
        {"item": instance, "fresh": True},
        event="board.item",
    )
    # "@bob" in an item notifies bob on his private channel.
    names = set(_MENTION.findall(instance.text)) - {instance.author.get_username()}
    for user in get_user_model().objects.filter(username__in=names):
        Notification.objects.create(
            recipient=user, text=f"{instance.author.get_username()} mentioned you: {instance.text}"
        )


def notification_saved(
    sender: type[Notification], instance: Notification, created: bool, **kwargs: Any
) -> None:
    if created:
        publish_on_commit(f"user.{instance.recipient_id}", instance.as_event(), event="notification")
        publish_fragment(
            notification_fragment_channel(instance.recipient_id),
            "demo/fragments/notification.html",
            {"note": instance, "fresh": True},
            event="notification",
        )


def notification_fragment_channel(user_id: object) -> str:
    """The user's private channel for fragments: `user.<pk>.*` is theirs alone, like `user.<pk>`."""
    return f"user.{user_id}.html"
