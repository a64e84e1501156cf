"""The demo page: watch channels over SSE, publish an event with a form.

The form works without JavaScript (POST, redirect, flash message). demo.js submits it with
fetch and `Accept: application/json` instead, so the page and its EventSource stay open and
the event shows up in the list. Publishing needs a logged-in user, and only to channels that
user may read. A logged-in user also watches their private channel `user.<pk>`; demo.js gets a
ticket for it before opening the stream.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from demo.forms import PublishForm
from django_sse_push.exceptions import (
    InvalidChannelError,
    InvalidEventTypeError,
    PublishBackendError,
    PublishError,
)
from django_sse_push.permissions import can_read_channel, is_public
from django_sse_push.publish import publish
from django_sse_push.validation import CHANNEL_RE

SSE_PATH = "/sse/"  # nginx routes it to the SSE service
DEFAULT_CHANNEL = "public.demo"
# EventSource calls onmessage only for the default type; the page listens for these too.
NAMED_EVENT_TYPES = ("update", "notice", "alert")


@require_http_methods(["GET", "HEAD", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    channels, bad_channels = _watched_channels(request)
    status = 400 if bad_channels else 200
    if request.method == "POST":
        form = PublishForm(request.POST)
        event_id, status = _publish(request, form) if form.is_valid() else (None, 400)
        if event_id is not None:
            channel = form.cleaned_data["channel"]
            if _wants_json(request):
                return JsonResponse({"id": event_id, "channel": channel})
            messages.success(request, f"Published event {event_id} to {channel}.")
            return redirect(request.get_full_path())
        if _wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data()}, status=status)
    else:
        form = PublishForm(initial={"channel": channels[0] if channels else DEFAULT_CHANNEL})

    context = {
        "form": form,
        "channels": channels,
        "bad_channels": bad_channels,
        # No stream for a page with a bad channel: the SSE service would refuse it anyway.
        "stream_url": "" if bad_channels else _stream_url(channels),
        # Private channels need a ticket first; demo.js asks this URL for one.
        "ticket_url": "" if all(is_public(c) for c in channels) else reverse("sse_push:ticket"),
        "named_event_types": NAMED_EVENT_TYPES,
        "event_types": " ".join(NAMED_EVENT_TYPES),
    }
    return render(request, "demo/index.html", context, status=status)


def _publish(request: HttpRequest, form: PublishForm) -> tuple[str | None, int]:
    """Publish the form's event: (event id, 200), or (None, status) with errors on the form."""
    data = form.cleaned_data
    if not request.user.is_authenticated:
        form.add_error(None, "Log in to publish.")
        return None, 403
    if not can_read_channel(request.user, data["channel"]):
        form.add_error("channel", "You may publish only to channels you can read.")
        return None, 403
    try:
        return publish(data["channel"], data["data"], event=data["event"] or None), 200
    except PublishBackendError as exc:
        form.add_error(None, f"Could not reach Redis, try again: {exc}")
        return None, 503
    except PublishError as exc:
        if isinstance(exc, InvalidChannelError):
            form.add_error("channel", str(exc))
        elif isinstance(exc, InvalidEventTypeError):
            form.add_error("event", str(exc))
        else:
            form.add_error("data", str(exc))
        return None, 400


def _watched_channels(request: HttpRequest) -> tuple[list[str], list[str]]:
    """Channels from `?channel=a&channel=b` or `?channel=a,b` (commas are not in names), and the
    logged-in user's own `user.<pk>`."""
    names: list[str] = []
    for value in request.GET.getlist("channel"):
        names.extend(name.strip() for name in value.split(",") if name.strip())
    names = names or [DEFAULT_CHANNEL]
    if request.user.is_authenticated:
        names.append(f"user.{request.user.pk}")
    names = list(dict.fromkeys(names))
    bad = [name for name in names if not CHANNEL_RE.fullmatch(name)]
    return [name for name in names if name not in bad], bad


def _stream_url(channels: list[str]) -> str:
    return SSE_PATH + "?" + urlencode([("channel", name) for name in channels])


def _wants_json(request: HttpRequest) -> bool:
    return bool(request.get_preferred_type(["text/html", "application/json"]) == "application/json")
