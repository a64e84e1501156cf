"""`manage.py check`: what is wrong with the app's settings and templates, before the first request.

Each problem has a stable id (silence one with SILENCED_SYSTEM_CHECKS) and a hint naming the setting:

- W001 no Redis configured: neither SSE_REDIS_URL nor SSE_REDIS_CLUSTER_NODES is set, so publishing
  goes to the default, a Redis on this machine, which in production is rarely what was meant.
- W002 a setting starting with `SSE_` that the app does not know (a typo would silently keep the default).
- W003 (database check: `manage.py check --database default`) the app's migrations are not applied
  to a database, so `publish_on_commit` has no outbox table to write to.
- E001 SSE_REDIS_URL, E002 SSE_REDIS_CLUSTER_NODES malformed: each read as redis-py reads it, so a
  value that passes does not raise on every use.
- E003 SSE_KEY_PREFIX invalid: it names every Redis key and channel of the wire contract.
- E004 SSE_CHANNEL_PERMISSION does not import, or is not callable.
- E005 SSE_TICKET_TTL_SECONDS out of range.
- E006 SSE_PUBLIC_PREFIXES cannot start a channel name.
- E007 SSE_MAX_PAYLOAD_BYTES, SSE_STREAM_MAXLEN, SSE_IDEMPOTENCY_SECONDS or SSE_OUTBOX_BATCH_SIZE not a
  positive whole number.
- E008 a channel name the wire contract forbids, written in a template.
- E009 SSE_OUTBOX_POLL_SECONDS not a positive number of seconds.
- E010 SSE_STREAM_URL cannot be where pages open their streams.
- E011 the ticket URL is not in the project's URLconf: pages would leave their private channels out.

What E008 can see: string literals given to `{% live_stream %}` and `{% htmx_stream %}`, and the
`channel=` values of an `sse-connect="/sse/?..."` attribute, in every template file of the configured
Django template engines (DIRS and the apps' templates/ folders). Names built at run time (variables,
f-strings passed to `publish()`) cannot be checked statically; `publish()` raises for them instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.template import engines
from django.template.backends.django import DjangoTemplates
from django.template.base import smart_split
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from django_sse_push.conf import PushSettings, setting_name
from django_sse_push.rules import (
    CHANNEL_PREFIX_RE,
    CLUSTER_NODE_RE,
    KEY_PREFIX_RE,
    redis_url_problem,
    stream_url_problem,
)
from django_sse_push.urls import TICKET_URL_NAME
from django_sse_push.validation import CHANNEL_RE

TICKET_TTL_RANGE = (10, 86_400)  # seconds: shorter means a renewal storm, longer a stolen ticket that lasts
_STREAM_TAG = re.compile(r"\{%\s*(?:live_stream|htmx_stream)\s+(.*?)%\}", re.DOTALL)
_SSE_CONNECT = re.compile(r"""sse-connect\s*=\s*["']([^"']*)["']""")
_STRING_LITERAL = re.compile(r"""(["'])(.*)\1""", re.DOTALL)


@dataclass(frozen=True)
class _Rule:
    code: str
    setting: str
    valid: Callable[[Any], bool]
    must: str  # what a valid value is, as the message says it
    hint: str
    # Why redis-py or the page would refuse a value of the right type, when it says more than `must`.
    problem: Callable[[str], str | None] | None = None


def _strings(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    """A list or tuple of strings, each matching `pattern`."""
    return lambda value: (
        isinstance(value, list | tuple)
        and all(isinstance(item, str) and pattern.fullmatch(item) for item in value)
    )


def _whole(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda value: (
        isinstance(value, int)
        and not isinstance(value, bool)
        and low <= value
        and (high is None or value <= high)
    )


def _positive_seconds(value: Any) -> bool:
    """An int or float above zero, as time.sleep and Event.wait take it (not a str, not a bool)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _cluster_nodes(value: Any) -> bool:
    """host:port strings whose port a TCP connection can use."""
    return _strings(CLUSTER_NODE_RE)(value) and all(
        0 < int(node.rpartition(":")[2]) < 65536 for node in value
    )


_LOW_TTL, _HIGH_TTL = TICKET_TTL_RANGE
_RULES = (
    _Rule(
        "E001",
        "SSE_REDIS_URL",
        lambda value: isinstance(value, str),
        "be a Redis URL",
        "e.g. SSE_REDIS_URL = 'redis://127.0.0.1:6379/0' (also rediss:// or unix://), "
        "the Redis the SSE service reads.",
        redis_url_problem,
    ),
    _Rule(
        "E002",
        "SSE_REDIS_CLUSTER_NODES",
        _cluster_nodes,
        "list host:port strings, each port from 1 to 65535",
        "SSE_REDIS_CLUSTER_NODES = ['redis-1:6379', 'redis-2:6379'], or leave it unset.",
    ),
    _Rule(
        "E003",
        "SSE_KEY_PREFIX",
        lambda value: isinstance(value, str) and bool(KEY_PREFIX_RE.fullmatch(value)),
        "be a non-empty string without whitespace or braces",
        "SSE_KEY_PREFIX names every Redis key of the wire contract (braces are Redis Cluster hash "
        "tags), and must equal the SSE service's SSE_KEY_PREFIX.",
    ),
    _Rule(
        "E005",
        "SSE_TICKET_TTL_SECONDS",
        _whole(_LOW_TTL, _HIGH_TTL),
        f"be a whole number of seconds from {_LOW_TTL} to {_HIGH_TTL}",
        "Pages renew their ticket at 80 % of it; 300 (the default) suits most sites.",
    ),
    _Rule(
        "E006",
        "SSE_PUBLIC_PREFIXES",
        lambda value: bool(value) and _strings(CHANNEL_PREFIX_RE)(value),
        "list at least one string that can start a channel name (the SSE service needs one)",
        "e.g. SSE_PUBLIC_PREFIXES = ['public.'], the same as the SSE service's.",
    ),
    *(
        _Rule(
            "E007", name, _whole(1), "be a positive whole number", f"Set {name} to an int, or leave it unset."
        )
        for name in (
            "SSE_MAX_PAYLOAD_BYTES",
            "SSE_STREAM_MAXLEN",
            "SSE_IDEMPOTENCY_SECONDS",
            "SSE_OUTBOX_BATCH_SIZE",
        )
    ),
    _Rule(
        "E009",
        "SSE_OUTBOX_POLL_SECONDS",
        _positive_seconds,
        "be a positive number of seconds",
        "How often an idle relay looks for pending events, e.g. SSE_OUTBOX_POLL_SECONDS = 1.0.",
    ),
    _Rule(
        "E010",
        "SSE_STREAM_URL",
        lambda value: isinstance(value, str),
        "be a URL",
        "'/sse/' behind nginx (the default), or the SSE service on another origin in development, "
        "e.g. 'http://127.0.0.1:8001/sse/' with the service's SSE_CORS_ORIGINS set to this site.",
        stream_url_problem,
    ),
)


def check_settings(app_configs: Iterable[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    problems = [*_no_redis(), *_unknown_names(), *_permission_hook()]
    for rule in _RULES:
        _, value = _setting(rule.setting)
        if not rule.valid(value):
            problems.append(_problem(rule.code, f"{rule.setting} must {rule.must}; got {value!r}", rule.hint))
        elif rule.problem is not None and (why := rule.problem(value)) is not None:
            problems.append(_problem(rule.code, f"{rule.setting} {value!r} {why}", rule.hint))
    return problems


def check_ticket_url(app_configs: Iterable[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Pages with private channels ask the ticket URL; without it they leave those channels out."""
    try:
        reverse(TICKET_URL_NAME)
    except NoReverseMatch:
        return [
            _problem(
                "E011",
                "the ticket URL is not in the project's URLconf: pages leave their private channels "
                "(user=True, user.<pk>) out of their streams",
                'Add path("live/", include("django_sse_push.urls")) to your root urls.py; if your '
                "pages use public channels only, add django_sse_push.E011 to SILENCED_SYSTEM_CHECKS.",
            )
        ]
    return []


def check_migrations(
    app_configs: Iterable[AppConfig] | None = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """A database check (`manage.py check --database default`; `migrate` runs it too, hence a warning,
    not an error): the app's migrations not applied there means no outbox table for publish_on_commit."""
    problems: list[CheckMessage] = []
    for alias in databases or ():
        if not router.allow_migrate(alias, "django_sse_push"):
            continue
        try:
            executor = MigrationExecutor(connections[alias])
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes("django_sse_push"))
        except DatabaseError:
            continue  # unreachable: Django's own checks and the first query say so
        if plan:
            problems.append(
                _problem(
                    "W003",
                    f"django_sse_push's outbox is not ready in database {alias!r} ({len(plan)} "
                    "migration(s) not applied): until `manage.py migrate` applies them, a commit that "
                    "publishes fails",
                    "Run `python manage.py migrate`.",
                )
            )
    return problems


def check_template_channels(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    return [
        _problem(
            "E008",
            f"{path}: channel {channel!r} breaks the naming rule of the wire contract",
            "Channel names are 1-128 ASCII letters, digits, '_', '.' or '-', starting with a "
            "letter or digit; the SSE service refuses any other with a 400.",
        )
        for path, channel in _template_channels()
        if not CHANNEL_RE.fullmatch(channel)
    ]


def _problem(code: str, message: str, hint: str) -> CheckMessage:
    """`W...` codes are warnings, `E...` errors; ids are `django_sse_push.<code>`."""
    kind = Warning if code.startswith("W") else Error
    return kind(message, hint=hint, id=f"django_sse_push.{code}")


def _setting(name: str) -> tuple[bool, Any]:
    """(whether the project sets it, its value or the default)."""
    field = name.removeprefix("SSE_")
    default = next(f.default for f in fields(PushSettings) if f.name == field)
    return hasattr(settings, name), getattr(settings, name, default)


def _no_redis() -> Iterator[CheckMessage]:
    url_set, url = _setting("SSE_REDIS_URL")
    _, nodes = _setting("SSE_REDIS_CLUSTER_NODES")
    if not url_set and not nodes:
        yield _problem(
            "W001",
            f"no Redis configured: publishing goes to the default {url}",
            "Set SSE_REDIS_URL (or SSE_REDIS_CLUSTER_NODES for a Redis Cluster) to the Redis the "
            "SSE service reads, e.g. SSE_REDIS_URL = 'redis://redis:6379/0'.",
        )


def _unknown_names() -> Iterator[CheckMessage]:
    known = {setting_name(field.name) for field in fields(PushSettings)}
    for name in sorted(n for n in dir(settings) if n.startswith("SSE_") and n not in known):
        yield _problem(
            "W002",
            f"{name} is not a setting of django_sse_push, so it changes nothing",
            f"The settings are {', '.join(sorted(known))}.",
        )


def _permission_hook() -> Iterator[CheckMessage]:
    _, path = _setting("SSE_CHANNEL_PERMISSION")
    if not isinstance(path, str):
        yield _problem(
            "E004",
            f"SSE_CHANNEL_PERMISSION must be a dotted path; got {path!r}",
            "SSE_CHANNEL_PERMISSION is the dotted path of a function (user, channel) -> bool.",
        )
        return
    try:
        hook = import_string(path)
    except (ImportError, TypeError, ValueError) as exc:
        yield _problem(
            "E004",
            f"SSE_CHANNEL_PERMISSION {path!r} does not import: {exc}",
            "SSE_CHANNEL_PERMISSION is the dotted path of a function (user, channel) -> bool.",
        )
        return
    if not callable(hook):
        yield _problem(
            "E004",
            f"SSE_CHANNEL_PERMISSION {path!r} is not callable",
            "SSE_CHANNEL_PERMISSION is the dotted path of a function (user, channel) -> bool.",
        )


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
