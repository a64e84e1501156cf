from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """A page that watches channels live and publishes test events."""

    name = "demo"
