"""`manage.py create_demo_users`: the demo's users, alice (staff) and bob, with the documented demo password.

For local stacks and demos only: anyone who has read the README knows the password. devstack runs it
after `migrate`; the docker entrypoint runs it only when DJANGO_DEMO_USERS=true.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAMES = ("alice", "bob")
DEMO_PASSWORD = "sse-demo"


class Command(BaseCommand):
    help = "Create (or reset) the demo users alice and bob, password 'sse-demo'."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        for username in DEMO_USERNAMES:
            user, created = users.objects.get_or_create(username=username)
            user.set_password(DEMO_PASSWORD)
            # alice runs the admin (its broadcast action); bob is an ordinary user.
            user.is_staff = user.is_superuser = username == "alice"
            user.save()
            self.stdout.write(f"{'created' if created else 'reset'} {username} (id {user.pk})")
