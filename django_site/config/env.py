"""Typed reads of environment variables for settings.py.

Every failure raises ImproperlyConfigured naming the variable, so a bad deploy stops at start-up
with a message that says what to fix. An empty value counts as unset: compose files and `.env`
templates write `VAR=` to mean "not set".
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

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
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def read_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    value = environ.get(name, "").strip()
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]
