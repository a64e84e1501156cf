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


def test_access_settings_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "SSE_PUBLIC_PREFIXES": "public., news.",
            "SSE_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "SSE_MAX_CONNECTIONS_PER_USER": "3",
            "SSE_MAX_CONNECTIONS_PER_ADDRESS": "9",
        }
    )
    assert settings.public_prefixes == ("public.", "news.")
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert (settings.max_connections_per_user, settings.max_connections_per_address) == (3, 9)


def test_access_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.public_prefixes == ("public.",)
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "::1/128"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SSE_PUBLIC_PREFIXES", ","),
        ("SSE_PUBLIC_PREFIXES", "public.,.dot"),
        ("SSE_PUBLIC_PREFIXES", "pub lic"),
        ("SSE_TRUSTED_PROXIES", "nginx"),
        ("SSE_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("SSE_MAX_CONNECTIONS_PER_USER", "0"),
        ("SSE_MAX_CONNECTIONS_PER_ADDRESS", "many"),
        ("SSE_MAX_CHANNELS_PER_PROCESS", "0"),
    ],
)
def test_invalid_access_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_private_reserve_is_a_fifth_of_the_channel_cap_unless_set() -> None:
    assert Settings.from_env({}).private_reserve == 2000
    assert Settings.from_env({"SSE_MAX_CHANNELS_PER_PROCESS": "500"}).private_reserve == 100
    assert Settings.from_env({"SSE_RESERVED_PRIVATE_CHANNELS": "0"}).private_reserve == 0


@pytest.mark.parametrize("value", ["-1", "10000", "many"])
def test_a_private_reserve_not_below_the_channel_cap_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="SSE_RESERVED_PRIVATE_CHANNELS"):
        Settings.from_env({"SSE_RESERVED_PRIVATE_CHANNELS": value})
