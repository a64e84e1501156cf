"""`manage.py create_demo_users`."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_creates_alice_and_bob_and_resets_them_when_run_again() -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("create_demo_users", stdout=first)
    alice = get_user_model().objects.get(username="alice")
    alice.set_password("changed")
    alice.save()
    call_command("create_demo_users", stdout=second)

    assert "created alice" in first.getvalue() and "created bob" in first.getvalue()
    assert "reset alice" in second.getvalue()
    for username in ("alice", "bob"):
        assert authenticate(username=username, password="sse-demo") is not None
    assert get_user_model().objects.count() == 2
