from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo: an activity board, a notification bell, and a page that watches any channel."""

    name = "demo"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from demo.models import BoardItem, Notification
        from demo.signals import board_item_saved, notification_saved

        post_save.connect(board_item_saved, sender=BoardItem, dispatch_uid="demo.board_item_saved")
        post_save.connect(notification_saved, sender=Notification, dispatch_uid="demo.notification_saved")
