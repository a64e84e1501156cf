"""`/events/<channel>`, one channel per stream as in the README's `format-channels` example."""

import django_eventstream
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("health", health),
    path("events/<str:channel>", include(django_eventstream.urls), {"format-channels": ["{channel}"]}),
]
