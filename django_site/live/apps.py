from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Django's side of the SSE service: publishing, channel permissions and subscription tickets."""

    name = "live"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from live.tickets import revoke_on_logout

        user_logged_out.connect(revoke_on_logout, dispatch_uid="live.revoke_on_logout")
