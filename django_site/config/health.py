"""`/healthz` for docker healthchecks.

A middleware at the top of the stack rather than a view: it answers before Django validates the
Host header, so a healthcheck probing `localhost` passes even when DJANGO_ALLOWED_HOSTS lists only
the public name. It checks that the process serves requests, not that Redis is up: a Redis blip
should not get the web container restarted.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEALTH_PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return HttpResponse("ok", content_type="text/plain; charset=utf-8")
        return self.get_response(request)
