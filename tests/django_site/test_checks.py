"""`manage.py check` names what is wrong with the app's settings and templates, by stable id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pytest_django.fixtures import Settings

from django_sse_push.checks import check_settings, check_template_channels


def _ids(messages: list[CheckMessage]) -> list[str]:
    return [message.id or "" for message in messages]


def test_the_test_settings_pass(settings: Settings) -> None:
    assert check_settings() == []
    assert check_template_channels() == []


def test_no_redis_configured_is_a_warning_naming_the_setting(settings: Settings) -> None:
    del settings.SSE_REDIS_URL
    (warning,) = check_settings()
    assert warning.id == "django_sse_push.W001"
    assert "SSE_REDIS_URL" in (warning.hint or "")


def test_cluster_nodes_alone_count_as_configured(settings: Settings) -> None:
    del settings.SSE_REDIS_URL
    settings.SSE_REDIS_CLUSTER_NODES = ["redis-1:6379", "redis-2:6379"]
    assert check_settings() == []


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("SSE_REDIS_URL", "http://redis:6379", "django_sse_push.E001"),
        ("SSE_REDIS_URL", None, "django_sse_push.E001"),
        ("SSE_REDIS_CLUSTER_NODES", "redis-1:6379", "django_sse_push.E002"),
        ("SSE_REDIS_CLUSTER_NODES", ["redis-1"], "django_sse_push.E002"),
        ("SSE_KEY_PREFIX", "my app", "django_sse_push.E003"),
        ("SSE_KEY_PREFIX", "{sse}", "django_sse_push.E003"),
        ("SSE_KEY_PREFIX", "", "django_sse_push.E003"),
        ("SSE_CHANNEL_PERMISSION", "myapp.permissions.can_read", "django_sse_push.E004"),
        ("SSE_CHANNEL_PERMISSION", "django_sse_push.permissions.missing", "django_sse_push.E004"),
        ("SSE_CHANNEL_PERMISSION", "django_sse_push.permissions.PREFIX_ABSENT", "django_sse_push.E004"),
        ("SSE_CHANNEL_PERMISSION", "django_sse_push.tickets.COOKIE_NAME", "django_sse_push.E004"),
        ("SSE_TICKET_TTL_SECONDS", 5, "django_sse_push.E005"),
        ("SSE_TICKET_TTL_SECONDS", 86_401, "django_sse_push.E005"),
        ("SSE_TICKET_TTL_SECONDS", "300", "django_sse_push.E005"),
        ("SSE_PUBLIC_PREFIXES", "public.", "django_sse_push.E006"),
        ("SSE_PUBLIC_PREFIXES", [".public"], "django_sse_push.E006"),
        ("SSE_MAX_PAYLOAD_BYTES", 0, "django_sse_push.E007"),
        ("SSE_STREAM_MAXLEN", True, "django_sse_push.E007"),
        ("SSE_TICKET_TTL", 60, "django_sse_push.W002"),
    ],
)
def test_a_broken_setting_is_reported_by_id_and_name(
    settings: Settings, name: str, value: Any, check_id: str
) -> None:
    setattr(settings, name, value)
    (message,) = check_settings()
    assert message.id == check_id
    assert name in message.msg


def test_a_ticket_ttl_in_range_passes(settings: Settings) -> None:
    for ttl in (10, 300, 86_400):
        settings.SSE_TICKET_TTL_SECONDS = ttl
        assert check_settings() == []


def test_a_forbidden_channel_in_a_template_is_reported_with_its_file(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "ok.html").write_text(
        '{% load sse_push %}{% live_stream "public.news" channel_var user=True %}'
        '<div hx-ext="sse" sse-connect="/sse/?channel=public.news&channel={{ other }}"></div>'
    )
    (tmp_path / "bad.html").write_text(
        '{% load sse_push %}{% htmx_stream "public.ok" "public news" %}{% endhtmx_stream %}\n'
        '<div hx-ext="sse" sse-connect="/sse/?channel=public.ok&channel=.hidden"></div>'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    errors = check_template_channels()
    assert _ids(errors) == ["django_sse_push.E008", "django_sse_push.E008"]
    assert all(str(tmp_path / "bad.html") in error.msg for error in errors)
    assert "'public news'" in errors[0].msg and "'.hidden'" in errors[1].msg


def test_manage_py_check_runs_the_checks(settings: Settings) -> None:
    settings.SSE_KEY_PREFIX = "two words"
    with pytest.raises(SystemCheckError, match=r"django_sse_push\.E003.*SSE_KEY_PREFIX"):
        call_command("check")
