"""`POST /live/ticket`: a ticket for the channels asked for, if the user may read them all."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from django_sse_push.conf import push_settings
from django_sse_push.exceptions import TicketBackendError
from django_sse_push.permissions import can_read_channel, is_public
from django_sse_push.tickets import COOKIE_NAME, COOKIE_PATH, issue_ticket
from django_sse_push.validation import CHANNEL_RE

MAX_CHANNELS = 64


@never_cache
@require_POST
def ticket(request: HttpRequest) -> HttpResponse:
    """Form field `channel`, repeated. 200 with the ticket (also set as the cookie; `null` for an
    anonymous visitor asking only for public channels, which need none), 400 for bad names, 403
    listing the channels this user may not read, 503 when Redis is down."""
    # Before request.user is first read (authenticating the request): a ticket lives no longer
    # than its session's logout mark (tickets.py).
    asked_at = time.monotonic()
    channels = list(dict.fromkeys(request.POST.getlist("channel")))
    if not channels:
        return JsonResponse({"error": "no channel given: send channel=<name>, repeated"}, status=400)
    if len(channels) > MAX_CHANNELS:
        return JsonResponse({"error": f"at most {MAX_CHANNELS} channels per ticket"}, status=400)
    invalid = [name for name in channels if not CHANNEL_RE.fullmatch(name)]
    if invalid:
        return JsonResponse({"error": "invalid channel names", "channels": invalid}, status=400)
    refused = [name for name in channels if not can_read_channel(request.user, name)]
    if refused:
        return JsonResponse({"error": "not allowed to read these channels", "channels": refused}, status=403)
    if not request.user.is_authenticated and all(is_public(name) for name in channels):
        # Nothing for the SSE service to check, so nothing is stored: anonymous visitors cannot
        # fill Redis with tickets by asking again and again.
        return JsonResponse(
            {"ticket": None, "expires_in": push_settings().TICKET_TTL_SECONDS, "channels": channels}
        )
    try:
        session = getattr(request, "session", None)
        issued = issue_ticket(
            request.user, channels, session_key=getattr(session, "session_key", None), asked_at=asked_at
        )
    except TicketBackendError:
        return JsonResponse({"error": "tickets are unavailable right now; retry later"}, status=503)
    response = JsonResponse(
        {"ticket": issued.token, "expires_in": issued.expires_in, "channels": list(issued.channels)}
    )
    response.set_cookie(
        COOKIE_NAME,
        issued.token,
        max_age=issued.expires_in,
        path=COOKIE_PATH,
        # No weaker than the session cookie: Secure when the site is meant to be HTTPS.
        secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response
