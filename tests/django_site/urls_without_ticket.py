"""A project's URLconf that forgot `include("django_sse_push.urls")`."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
