"""Settings from environment variables: typed, read once, and loud about bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import read_bool, read_int, read_list, read_str

DJANGO_SITE = Path(__file__).resolve().parents[2] / "django_site"
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.SECURE_PROXY_SSL_HEADER, s.CSRF_COOKIE_SECURE, s.ALLOWED_HOSTS, "
    "s.SSE_KEY_PREFIX, s.SSE_MAX_PAYLOAD_BYTES, s.SSE_STREAM_MAXLEN, s.SSE_REDIS_URL)"
)


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import config.settings in a fresh process, with only the given site variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SSE_", "REDIS"))}
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=DJANGO_SITE,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), ("no", False)],
)
def test_read_bool_accepts_the_explicit_map(value: str, expected: bool) -> None:
    assert read_bool({"FLAG": value}, "FLAG", default=not expected) is expected


@pytest.mark.parametrize("value", ["on", "2", "y", "tru"])
def test_read_bool_rejects_anything_else_naming_the_variable(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG must be one of"):
        read_bool({"DJANGO_DEBUG": value}, "DJANGO_DEBUG", default=False)


def test_empty_values_count_as_unset() -> None:
    env = {"S": "", "B": " ", "I": "", "L": ""}
    assert read_str(env, "S", default="d") == "d"
    assert read_bool(env, "B", default=True) is True
    assert read_int(env, "I", default=5, minimum=1) == 5
    assert read_list(env, "L", default=["a"]) == ["a"]


def test_read_int_names_the_variable_when_not_an_integer_or_too_small() -> None:
    with pytest.raises(ImproperlyConfigured, match="SSE_STREAM_MAXLEN must be an integer"):
        read_int({"SSE_STREAM_MAXLEN": "1k"}, "SSE_STREAM_MAXLEN", default=1, minimum=1)
    with pytest.raises(ImproperlyConfigured, match="SSE_MAX_PAYLOAD_BYTES must be at least 1"):
        read_int({"SSE_MAX_PAYLOAD_BYTES": "0"}, "SSE_MAX_PAYLOAD_BYTES", default=1, minimum=1)


def test_read_list_splits_on_commas_and_trims() -> None:
    env = {"HOSTS": " example.com, ,www.example.com ,"}
    assert read_list(env, "HOSTS", default=[]) == ["example.com", "www.example.com"]


def test_production_settings_when_debug_is_off() -> None:
    result = _load_settings(DJANGO_SECRET_KEY="s3cret", DJANGO_ALLOWED_HOSTS="example.com")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == (
        "False ('HTTP_X_FORWARDED_PROTO', 'https') True ['example.com'] sse 65536 1000 "
        "redis://127.0.0.1:6379/0"
    )


def test_debug_runs_without_a_secret_key() -> None:
    result = _load_settings(DJANGO_DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True None False ['localhost', '127.0.0.1']")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be one of"),
        ({"DJANGO_DEBUG": "1", "SSE_STREAM_MAXLEN": "lots"}, "SSE_STREAM_MAXLEN must be an"),
        ({"DJANGO_DEBUG": "1", "SSE_MAX_PAYLOAD_BYTES": "-1"}, "SSE_MAX_PAYLOAD_BYTES must be"),
        ({"DJANGO_DEBUG": "1", "REDIS_URL": "localhost:6379"}, "REDIS_URL must start with"),
        ({"DJANGO_DEBUG": "1", "SSE_KEY_PREFIX": "a{b}"}, "SSE_KEY_PREFIX must not contain"),
        ({"DJANGO_DEBUG": "1", "SSE_PUBLIC_PREFIXES": "public.,.x"}, "SSE_PUBLIC_PREFIXES entries must"),
        ({"DJANGO_DEBUG": "1", "SSE_TICKET_TTL_SECONDS": "5"}, "SSE_TICKET_TTL_SECONDS must be at least"),
        (
            {"DJANGO_DEBUG": "1", "DJANGO_CSRF_TRUSTED_ORIGINS": "example.com"},
            "DJANGO_CSRF_TRUSTED_ORIGINS entries need a scheme",
        ),
    ],
)
def test_bad_configuration_stops_start_up_naming_the_variable(env: dict[str, str], message: str) -> None:
    result = _load_settings(**env)

    assert result.returncode != 0
    assert message in result.stderr
