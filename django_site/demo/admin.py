"""Django admin for the demo, with an action that broadcasts items as announcements to every page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from demo.models import BoardItem, Notification
from demo.signals import ANNOUNCEMENT_CHANNEL
from django_sse_push.publish import publish_on_commit


@admin.action(description="Broadcast the selected items as announcements")
def broadcast(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[BoardItem]) -> None:
    for item in queryset:
        publish_on_commit(
            ANNOUNCEMENT_CHANNEL, {"text": item.text, "by": request.user.get_username()}, event="announcement"
        )
    modeladmin.message_user(request, f"Broadcast {len(queryset)} announcement(s).", messages.SUCCESS)


@admin.register(BoardItem)
class BoardItemAdmin(admin.ModelAdmin):
    list_display = ("text", "author", "created")
    actions = (broadcast,)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("text", "recipient", "created")
