"""`manage.py check`: what is wrong with the app's settings and templates, before the first request.

Each problem has a stable id (silence one with SILENCED_SYSTEM_CHECKS) and a hint naming the setting:

- W001 no Redis configured: neither SSE_REDIS_URL nor SSE_REDIS_CLUSTER_NODES is set, so publishing
  goes to the default, a Redis on this machine, which in production is rarely what was meant.
- W002 a setting starting with `SSE_` that the app does not know (a typo would silently keep the default).
- E001 SSE_REDIS_URL, E002 SSE_REDIS_CLUSTER_NODES malformed.
- E003 SSE_KEY_PREFIX invalid: it names every Redis key and channel of the wire contract.
- E004 SSE_CHANNEL_PERMISSION does not import, or is not callable.
- E005 SSE_TICKET_TTL_SECONDS out of range.
- E006 SSE_PUBLIC_PREFIXES cannot start a channel name.
- E007 SSE_MAX_PAYLOAD_BYTES or SSE_STREAM_MAXLEN not a positive whole number.
- E008 a channel name the wire contract forbids, written in a template.

What E008 can see: string literals given to `{% live_stream %}` and `{% htmx_stream %}`, and the
`channel=` values of an `sse-connect="/sse/?..."` attribute, in every template file of the configured
Django template engines (DIRS and the apps' templates/ folders). Names built at run time (variables,
f-strings passed to `publish()`) cannot be checked statically; `publish()` raises for them instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.template import engines
from django.template.backends.django import DjangoTemplates
from django.template.base import smart_split
from django.utils.module_loading import import_string

from django_sse_push.conf import PushSettings, setting_name
from django_sse_push.validation import CHANNEL_RE

TICKET_TTL_RANGE = (10, 86_400)  # seconds: shorter means a renewal storm, longer a stolen ticket that lasts
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_CLUSTER_NODE = re.compile(r"[^\s:]+:\d{1,5}")
_KEY_PREFIX = re.compile(r"[^\s{}]+")
_CHANNEL_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_STREAM_TAG = re.compile(r"\{%\s*(?:live_stream|htmx_stream)\s+(.*?)%\}", re.DOTALL)
_SSE_CONNECT = re.compile(r"""sse-connect\s*=\s*["']([^"']*)["']""")
_STRING_LITERAL = re.compile(r"""(["'])(.*)\1""", re.DOTALL)


def check_settings(app_configs: Iterable[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    return [*_redis(), *_unknown_names(), *_contract(), *_permission_hook(), *_ticket_ttl()]


def check_template_channels(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    return [
        Error(
            f"{path}: channel {channel!r} breaks the naming rule of the wire contract",
            hint="Channel names are 1-128 ASCII letters, digits, '_', '.' or '-', starting with a "
            "letter or digit; the SSE service refuses any other with a 400.",
            id="django_sse_push.E008",
        )
        for path, channel in _template_channels()
        if not CHANNEL_RE.fullmatch(channel)
    ]


def _setting(name: str) -> tuple[bool, Any]:
    """(whether the project sets it, its value or the default)."""
    field = name.removeprefix("SSE_")
    default = next(f.default for f in fields(PushSettings) if f.name == field)
    return hasattr(settings, name), getattr(settings, name, default)


def _redis() -> Iterator[CheckMessage]:
    url_set, url = _setting("SSE_REDIS_URL")
    _, nodes = _setting("SSE_REDIS_CLUSTER_NODES")
    if not url_set and not nodes:
        yield Warning(
            f"no Redis configured: publishing goes to the default {url}",
            hint="Set SSE_REDIS_URL (or SSE_REDIS_CLUSTER_NODES for a Redis Cluster) to the Redis the "
            "SSE service reads, e.g. SSE_REDIS_URL = 'redis://redis:6379/0'.",
            id="django_sse_push.W001",
        )
    if not isinstance(url, str) or urlsplit(url).scheme not in _REDIS_SCHEMES:
        yield Error(
            f"SSE_REDIS_URL is not a Redis URL: {url!r}",
            hint="SSE_REDIS_URL must start with redis://, rediss:// or unix://.",
            id="django_sse_push.E001",
        )
    if isinstance(nodes, str) or not all(isinstance(n, str) and _CLUSTER_NODE.fullmatch(n) for n in nodes):
        yield Error(
            f"SSE_REDIS_CLUSTER_NODES must list host:port strings; got {nodes!r}",
            hint="SSE_REDIS_CLUSTER_NODES = ['redis-1:6379', 'redis-2:6379'], or leave it unset.",
            id="django_sse_push.E002",
        )


def _unknown_names() -> Iterator[CheckMessage]:
    known = {setting_name(field.name) for field in fields(PushSettings)}
    for name in sorted(n for n in dir(settings) if n.startswith("SSE_") and n not in known):
        yield Warning(
            f"{name} is not a setting of django_sse_push, so it changes nothing",
            hint=f"The settings are {', '.join(sorted(known))}.",
            id="django_sse_push.W002",
        )


def _contract() -> Iterator[CheckMessage]:
    _, prefix = _setting("SSE_KEY_PREFIX")
    if not isinstance(prefix, str) or not _KEY_PREFIX.fullmatch(prefix):
        yield Error(
            f"SSE_KEY_PREFIX is invalid: {prefix!r}",
            hint="SSE_KEY_PREFIX must be a non-empty string without whitespace or braces (braces are "
            "Redis Cluster hash tags), and equal the SSE service's SSE_KEY_PREFIX.",
            id="django_sse_push.E003",
        )
    _, prefixes = _setting("SSE_PUBLIC_PREFIXES")
    if isinstance(prefixes, str) or not all(
        isinstance(p, str) and _CHANNEL_PREFIX.fullmatch(p) for p in prefixes
    ):
        yield Error(
            f"SSE_PUBLIC_PREFIXES must list strings that can start a channel name; got {prefixes!r}",
            hint="e.g. SSE_PUBLIC_PREFIXES = ['public.'], the same as the SSE service's.",
            id="django_sse_push.E006",
        )
    for name in ("SSE_MAX_PAYLOAD_BYTES", "SSE_STREAM_MAXLEN"):
        _, value = _setting(name)
        if not _is_whole(value) or value < 1:
            yield Error(
                f"{name} must be a positive whole number; got {value!r}",
                hint=f"Set {name} to an int of at least 1, or leave it unset for the default.",
                id="django_sse_push.E007",
            )


def _permission_hook() -> Iterator[CheckMessage]:
    _, path = _setting("SSE_CHANNEL_PERMISSION")
    try:
        hook = import_string(path)
    except (ImportError, TypeError, ValueError) as exc:
        yield Error(
            f"SSE_CHANNEL_PERMISSION {path!r} does not import: {exc}",
            hint="SSE_CHANNEL_PERMISSION is the dotted path of a function (user, channel) -> bool.",
            id="django_sse_push.E004",
        )
        return
    if not callable(hook):
        yield Error(
            f"SSE_CHANNEL_PERMISSION {path!r} is not callable",
            hint="SSE_CHANNEL_PERMISSION is the dotted path of a function (user, channel) -> bool.",
            id="django_sse_push.E004",
        )


def _ticket_ttl() -> Iterator[CheckMessage]:
    _, ttl = _setting("SSE_TICKET_TTL_SECONDS")
    low, high = TICKET_TTL_RANGE
    if not _is_whole(ttl) or not low <= ttl <= high:
        yield Error(
            f"SSE_TICKET_TTL_SECONDS must be a whole number of seconds from {low} to {high}; got {ttl!r}",
            hint="Pages renew their ticket at 80 % of it; 300 (the default) suits most sites.",
            id="django_sse_push.E005",
        )


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _template_channels() -> Iterator[tuple[Path, str]]:
    """(template file, channel name) for every channel a template names literally."""
    for directory in _template_dirs():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for arguments in _STREAM_TAG.findall(source):
                for bit in smart_split(arguments):
                    if literal := _STRING_LITERAL.fullmatch(bit):
                        yield path, literal.group(2)
            for url in _SSE_CONNECT.findall(source):
                if "{" not in url:  # rendered at run time: not checkable here
                    yield from ((path, v) for k, v in parse_qsl(urlsplit(url).query) if k == "channel")


def _template_dirs() -> list[Path]:
    found: list[Path] = []
    for engine in engines.all():
        if isinstance(engine, DjangoTemplates):
            found += [Path(d) for d in engine.template_dirs]
    return list(dict.fromkeys(d for d in found if d.is_dir()))
