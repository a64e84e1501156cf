"""`manage.py publish CHANNEL JSON [--event TYPE]`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from django_sse_push import keys

DJANGO_SITE = Path(__file__).resolve().parents[2] / "django_site"


def _manage(*args: str, redis_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
        "REDIS_URL": redis_url,
        "SSE_KEY_PREFIX": prefix,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=DJANGO_SITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_command_publishes_and_prints_the_id(redis_client: redis.Redis, key_prefix: str) -> None:
    out = io.StringIO()
    call_command("publish", "demo", '{"text": "hi"}', "--event", "notice", stdout=out)

    event_id = out.getvalue().strip()
    assert redis_client.xrange(keys.stream_key(key_prefix, "demo")) == [
        (event_id.encode(), {b"event": b"notice", b"data": b'{"text":"hi"}'})
    ]


def test_command_rejects_bad_json_with_a_clear_message(redis_client: redis.Redis, key_prefix: str) -> None:
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("publish", "demo", "{text: hi}")

    assert redis_client.keys(f"{key_prefix}*") == []


def test_command_turns_publish_errors_into_command_errors() -> None:
    with pytest.raises(CommandError, match="invalid channel"):
        call_command("publish", "bad channel", "1")
    with pytest.raises(CommandError, match="invalid event type"):
        call_command("publish", "demo", "1", "--event", "9lives")


def test_command_reports_an_unreachable_redis(settings: Settings, unreachable_redis_url: str) -> None:
    settings.SSE_REDIS_URL = unreachable_redis_url

    with pytest.raises(CommandError, match="could not publish"):
        call_command("publish", "demo", "1")


def test_manage_py_publish_runs_as_a_real_process(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    result = _manage("publish", "demo", '{"n": 1}', redis_url=redis_url, prefix=key_prefix)

    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip()
    [(stored_id, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert stored_id == event_id.encode()
    assert fields == {b"event": b"", b"data": b'{"n":1}'}


def test_manage_py_publish_with_bad_json_exits_non_zero_with_the_reason(
    redis_url: str, key_prefix: str
) -> None:
    result = _manage("publish", "demo", "not json", redis_url=redis_url, prefix=key_prefix)

    assert result.returncode != 0
    assert "JSON argument is not valid JSON" in result.stderr
    assert result.stdout == ""
