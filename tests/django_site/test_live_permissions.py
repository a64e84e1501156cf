"""django_sse_push.permissions: the public/private rule and the default hook, and choosing another hook."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from pytest_django.fixtures import Settings

from django_sse_push.permissions import can_read_channel, default_can_read_channel, is_public

pytestmark = pytest.mark.django_db


def only_vip(user: Any, channel: str) -> bool:
    """A custom hook, chosen by dotted path in a test below."""
    return channel == "vip.lounge"


@pytest.fixture
def users() -> dict[str, Any]:
    model = get_user_model()
    return {
        "anonymous": AnonymousUser(),
        "alice": model.objects.create_user("alice"),
        "bob": model.objects.create_user("bob"),
        "staff": model.objects.create_user("carol", is_staff=True),
        "gone": model.objects.create_user("dave", is_staff=True, is_active=False),
    }


def test_public_is_a_prefix_rule(settings: Settings) -> None:
    assert is_public("public.news")
    assert not is_public("publicnews")
    settings.SSE_PUBLIC_PREFIXES = ["news.", "public."]
    assert is_public("news.today") and is_public("public.x")
    assert not is_public("user.1")


def test_default_hook_matrix(users: dict[str, Any]) -> None:
    alice, bob = users["alice"], users["bob"]

    def readable(who: str) -> list[str]:
        channels = [
            "public.news",
            f"user.{alice.pk}",
            f"user.{alice.pk}.inbox",
            f"user.{alice.pk}0",
            f"user.{bob.pk}",
            "staff.alerts",
            "orders",
            "user.",
        ]
        return [c for c in channels if default_can_read_channel(users[who], c)]

    assert readable("anonymous") == ["public.news"]
    assert readable("alice") == ["public.news", f"user.{alice.pk}", f"user.{alice.pk}.inbox"]
    assert readable("bob") == ["public.news", f"user.{bob.pk}"]
    assert readable("staff") == ["public.news", "staff.alerts"]
    # An inactive user is treated as anonymous, staff flag or not.
    assert readable("gone") == ["public.news"]


def test_the_hook_is_chosen_by_dotted_path_and_asked_only_about_private_channels(
    settings: Settings, users: dict[str, Any]
) -> None:
    settings.SSE_CHANNEL_PERMISSION = f"{__name__}.only_vip"
    alice = users["alice"]

    assert can_read_channel(alice, "vip.lounge")
    assert not can_read_channel(alice, f"user.{alice.pk}")
    assert can_read_channel(users["anonymous"], "public.news")
