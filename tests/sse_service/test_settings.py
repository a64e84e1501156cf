from __future__ import annotations

import pytest

from sse_service.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.heartbeat_seconds == 15.0
    assert settings.key_prefix == "sse"


def test_values_are_cast_from_the_environment() -> None:
    settings = Settings.from_env(
        {"SSE_HEARTBEAT_SECONDS": "2.5", "SSE_RETRY_MS": "100", "SSE_LOG_LEVEL": "debug"}
    )
    assert (settings.heartbeat_seconds, settings.retry_ms, settings.log_level) == (2.5, 100, "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SSE_HEARTBEAT_SECONDS", "soon"),
        ("SSE_HEARTBEAT_SECONDS", "0"),
        ("SSE_RETRY_MS", "-1"),
        ("SSE_REDIS_URL", "localhost:6379"),
        ("SSE_KEY_PREFIX", "a{b}"),
        ("SSE_LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
