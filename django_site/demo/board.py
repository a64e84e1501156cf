"""The activity board at `/board/`: post an item, and every open page shows it at once.

Posting saves a BoardItem; its `post_save` publishes it on commit (demo/signals.py). The page's
live.js stream (`{% live_stream %}`) also carries the user's notifications and admin announcements.
`/board/htmx/` is the same board as an htmx page: the items and notifications arrive as HTML
fragments rendered by Django (`{% htmx_stream %}`), with no JavaScript of the page's own.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from demo.models import BoardItem, Notification
from demo.signals import BOARD_CHANNEL, BOARD_FRAGMENT_CHANNEL, notification_fragment_channel
from django_sse_push._redis import REDIS_ERRORS
from django_sse_push.presence import subscriber_count, who

logger = logging.getLogger(__name__)
SHOWN = 30


class BoardItemForm(forms.ModelForm):
    class Meta:
        model = BoardItem
        fields = ("text",)
        widgets: ClassVar = {
            "text": forms.TextInput(attrs={"placeholder": "Say something; @bob notifies bob"})
        }


@require_http_methods(["GET", "HEAD", "POST"])
def board(request: HttpRequest) -> HttpResponse:
    form = BoardItemForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return JsonResponse({"error": "log in to post"}, status=403)
        if form.is_valid():
            form.instance.author = request.user
            item = form.save()
            if request.headers.get("HX-Request") == "true":
                return HttpResponse(status=204)  # the item comes back over the stream
            if request.accepts("application/json") and not request.accepts("text/html"):
                return JsonResponse({"id": item.pk})
            return redirect("demo:board")
        if request.accepts("application/json") and not request.accepts("text/html"):
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    context = {**_board_context(request), "form": form, "listeners": _listeners()}
    return render(request, "demo/board.html", context, status=400 if form.errors else 200)


@require_GET
def board_htmx(request: HttpRequest) -> HttpResponse:
    context = {**_board_context(request), "form": BoardItemForm()}
    if request.user.is_authenticated:
        context["notification_channel"] = notification_fragment_channel(request.user.pk)
    return render(request, "demo/board_htmx.html", context)


def _board_context(request: HttpRequest) -> dict[str, object]:
    notifications = (
        Notification.objects.filter(recipient=request.user)[:10] if request.user.is_authenticated else []
    )
    return {
        "items": BoardItem.objects.select_related("author")[:SHOWN],
        "notifications": notifications,
        "board_channel": BOARD_CHANNEL,
        "board_fragment_channel": BOARD_FRAGMENT_CHANNEL,
    }


@require_GET
def presence(request: HttpRequest) -> JsonResponse:
    """How many browsers watch the board, and who of them is logged in (with a policy table that
    lists the board's members: demo/policies.json)."""
    return JsonResponse({"channel": BOARD_CHANNEL, "listeners": _listeners(), "viewers": _viewers()})


def _viewers() -> list[dict[str, str]] | None:
    try:
        return [{"user": member.user, "name": member.name} for member in who(BOARD_CHANNEL)]
    except REDIS_ERRORS:
        return None


def _listeners() -> int | None:
    try:
        return subscriber_count(BOARD_CHANNEL)
    except REDIS_ERRORS:
        # Also a Redis Cluster with no node answering, which is no RedisError.
        logger.warning("presence unavailable: Redis did not answer")
        return None
