from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The publish path: Django code hands events to the SSE service through Redis."""

    name = "live"
