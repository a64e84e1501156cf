"""Typed reads of environment variables for settings.py.

Every failure raises ImproperlyConfigured naming the variable, so a bad deploy stops at start-up
with a message that says what to fix. An empty value counts as unset: compose files and `.env`
templates write `VAR=` to mean "not set".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

Number = TypeVar("Number", int, float)

_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def read_str(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def read_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no; got {value!r}") from None


def read_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    return _read_number(environ, name, default, minimum, int, "an integer")


def read_float(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    return _read_number(environ, name, default, minimum, float, "a number")


def _read_number(
    environ: Mapping[str, str],
    name: str,
    default: Number,
    minimum: Number,
    cast: Callable[[str], Number],
    what: str,
) -> Number:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = cast(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}; got {value!r}") from None
    if not number >= minimum:  # also refuses nan
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def read_database_url(environ: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """A DATABASES entry from `postgres://user:password@host:port/name?option=value` (the
    conventional DATABASE_URL; `postgresql://` too, options go to psycopg), or None when unset."""
    value = environ.get(name, "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    database = unquote(parts.path.removeprefix("/"))
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"{name} must start with postgres:// or postgresql://; got scheme {parts.scheme!r}"
        )
    if not database or "/" in database:
        raise ImproperlyConfigured(
            f"{name} must name one database, as postgres://host/name; got {parts.path!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }


def read_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    value = environ.get(name, "").strip()
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]
