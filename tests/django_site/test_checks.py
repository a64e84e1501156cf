"""`manage.py check` names what is wrong with the app's settings and templates, by stable id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pytest_django.fixtures import Settings

from django_sse_push.checks import check_migrations, check_settings, check_template_channels, check_ticket_url


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
        ("SSE_PUBLIC_PREFIXES", [], "django_sse_push.E006"),
        ("SSE_CHANNEL_PERMISSION", 123, "django_sse_push.E004"),
        ("SSE_CHANNEL_PERMISSION", None, "django_sse_push.E004"),
        ("SSE_MAX_PAYLOAD_BYTES", 0, "django_sse_push.E007"),
        ("SSE_STREAM_MAXLEN", True, "django_sse_push.E007"),
        ("SSE_REDIS_URL", "redis://127.0.0.1:6379x/0", "django_sse_push.E001"),
        ("SSE_REDIS_CLUSTER_NODES", ["redis-1:99999"], "django_sse_push.E002"),
        ("SSE_REDIS_CLUSTER_NODES", ["redis-1:0"], "django_sse_push.E002"),
        ("SSE_IDEMPOTENCY_SECONDS", 0, "django_sse_push.E007"),
        ("SSE_OUTBOX_BATCH_SIZE", "100", "django_sse_push.E007"),
        ("SSE_STREAM_URL", "/sse", "django_sse_push.E010"),
        ("SSE_STREAM_URL", "/sse/?x=1", "django_sse_push.E010"),
        ("SSE_STREAM_URL", "ws://127.0.0.1:8001/sse/", "django_sse_push.E010"),
        ("SSE_STREAM_URL", "http://127.0.0.1:80a1/sse/", "django_sse_push.E010"),
        ("SSE_STREAM_URL", "sse/", "django_sse_push.E010"),
        ("SSE_STREAM_URL", None, "django_sse_push.E010"),
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


def test_a_redis_url_redis_py_refuses_fails_the_check_not_every_use(settings: Settings) -> None:
    """E001 looked only at the scheme: `redis://127.0.0.1:63a9/0` passed `manage.py check`, then
    every publish and every page with the tag raised ValueError. The URL is now read as redis-py
    reads it, and its reason is in the message."""
    settings.SSE_REDIS_URL = "redis://127.0.0.1:63a9/0"
    (message,) = check_settings()
    assert message.id == "django_sse_push.E001"
    assert "63a9" in message.msg and "redis-py" in message.msg


@pytest.mark.parametrize("value", [0, -1, "1", float("nan"), True])
def test_an_outbox_poll_interval_the_relay_cannot_sleep_fails_the_check(
    settings: Settings, value: Any
) -> None:
    """SSE_OUTBOX_POLL_SECONDS of 0, a negative number or a string passed `manage.py check`: the relay
    then spun, or died at its first idle pass. It must be a positive number of seconds."""
    settings.SSE_OUTBOX_POLL_SECONDS = value
    (message,) = check_settings()
    assert message.id == "django_sse_push.E009"
    assert "SSE_OUTBOX_POLL_SECONDS" in message.msg


@pytest.mark.parametrize("value", [0.2, 1, 30.0])
def test_a_positive_poll_interval_passes(settings: Settings, value: float) -> None:
    settings.SSE_OUTBOX_POLL_SECONDS = value
    assert check_settings() == []


@pytest.mark.parametrize(
    "value", ["/sse/", "/push/sse/", "http://127.0.0.1:8001/sse/", "https://push.example.com/sse/"]
)
def test_a_stream_url_on_this_or_another_origin_passes(settings: Settings, value: str) -> None:
    settings.SSE_STREAM_URL = value
    assert check_settings() == []


def test_the_ticket_url_is_found_in_the_test_urlconf() -> None:
    assert check_ticket_url() == []


@pytest.mark.urls("tests.django_site.urls_without_ticket")
def test_forgetting_the_ticket_url_include_fails_manage_py_check() -> None:
    """Forgetting `include("django_sse_push.urls")` passed `manage.py check`; pages with `user=True`
    were then a 500 for every logged-in user. E011 names the include to add."""
    (message,) = check_ticket_url()
    assert message.id == "django_sse_push.E011"
    assert 'include("django_sse_push.urls")' in (message.hint or "")
    with pytest.raises(SystemCheckError, match=r"django_sse_push\.E011"):
        call_command("check")


@pytest.mark.django_db
def test_a_migrated_database_passes_the_database_check() -> None:
    assert check_migrations(databases=["default"]) == []
    assert check_migrations() == []  # `manage.py check` without --database: nothing asked of a database
