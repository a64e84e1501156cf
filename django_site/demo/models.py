"""The demo's data: items on the public activity board, and private notifications.

Saving either publishes it (demo/signals.py), so every open page shows it at once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BoardItem(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="board_items")
    text = models.CharField(max_length=280)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return self.text

    def as_event(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "author": self.author.get_username(),
            "text": self.text,
            "created": self.created,
        }


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.CharField(max_length=280)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return self.text

    def as_event(self) -> dict[str, object]:
        return {"id": self.pk, "text": self.text, "created": self.created}
