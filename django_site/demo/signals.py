"""Model changes to browsers: `post_save` → `publish_on_commit`, sent only if the transaction commits."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model

from demo.models import BoardItem, Notification
from django_sse_push.publish import publish_on_commit

BOARD_CHANNEL = "public.board"
ANNOUNCEMENT_CHANNEL = "public.announcements"
_MENTION = re.compile(r"@([\w.@+-]+)")


def board_item_saved(sender: type[BoardItem], instance: BoardItem, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    publish_on_commit(BOARD_CHANNEL, instance.as_event(), event="board.item")
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
