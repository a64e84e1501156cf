from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class LiveConfig(AppConfig):
    """Django's side of the SSE service: publishing, channel permissions and subscription tickets."""

    name = "django_sse_push"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from django_sse_push.checks import (
            check_migrations,
            check_settings,
            check_template_channels,
            check_ticket_url,
        )
        from django_sse_push.tickets import revoke_on_logout

        user_logged_out.connect(revoke_on_logout, dispatch_uid="django_sse_push.revoke_on_logout")
        checks.register(check_settings, "django_sse_push")
        checks.register(check_template_channels, checks.Tags.templates)
        checks.register(check_ticket_url, checks.Tags.urls)
        checks.register(check_migrations, checks.Tags.database)
