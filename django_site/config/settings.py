"""Django settings, read once from environment variables (see config/env.py for the rules)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.env import read_bool, read_database_url, read_float, read_int, read_list, read_str
from django_sse_push.rules import CHANNEL_PREFIX_RE, CLUSTER_NODE_RE, KEY_PREFIX_RE, REDIS_SCHEMES

BASE_DIR = Path(__file__).resolve().parent.parent
_env = os.environ

DEBUG = read_bool(_env, "DJANGO_DEBUG", default=False)

SECRET_KEY = read_str(_env, "DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set (a long random string) unless DJANGO_DEBUG is true"
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = read_list(_env, "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

CSRF_TRUSTED_ORIGINS = read_list(_env, "DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"DJANGO_CSRF_TRUSTED_ORIGINS entries need a scheme, e.g. https://example.com; got {_origin!r}"
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sse_push",
    "demo",
]

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL when DATABASE_URL is set (compose does), else an SQLite file: `make run`'s default.
# Write-ahead logging, so the outbox relay's reads never block the site's writes, nor the reverse.
DATABASES = {
    "default": read_database_url(_env, "DATABASE_URL")
    or {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": read_str(_env, "DJANGO_DATABASE_PATH", default=str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions in the database, so logging out ends them for good; flash messages in a signed cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = read_str(_env, "DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

# Behind nginx, which terminates TLS and sets X-Forwarded-Proto.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Secure cookies by default in production; DJANGO_SECURE_COOKIES=false for plain-HTTP stacks
# reached by a non-localhost name (browsers drop Secure cookies there, and CSRF fails).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = read_bool(_env, "DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Uvicorn does not show Django's errors unless a handler prints them (Django's default console
# handler is active only with DEBUG on).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    # Through root only; Django's own handlers would print DEBUG-mode records twice.
    "loggers": {"django": {"handlers": [], "level": "INFO"}},
}

# The publish path (django_sse_push/); these must match the SSE service's values (docs/wire-contract.md).
SSE_REDIS_URL = read_str(_env, "REDIS_URL", default="redis://127.0.0.1:6379/0")
if urlsplit(SSE_REDIS_URL).scheme not in REDIS_SCHEMES:
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://; got {SSE_REDIS_URL!r}"
    )
# A Redis Cluster's start-up nodes (host:port, comma-separated); when set, REDIS_URL is not used and
# events travel on sharded pub/sub.
SSE_REDIS_CLUSTER_NODES = read_list(_env, "REDIS_CLUSTER_NODES", default=[])
for _node in SSE_REDIS_CLUSTER_NODES:
    if not CLUSTER_NODE_RE.fullmatch(_node):
        raise ImproperlyConfigured(f"REDIS_CLUSTER_NODES entries must be host:port; got {_node!r}")
SSE_KEY_PREFIX = read_str(_env, "SSE_KEY_PREFIX", default="sse")
if not KEY_PREFIX_RE.fullmatch(SSE_KEY_PREFIX):
    raise ImproperlyConfigured(
        f"SSE_KEY_PREFIX must not contain whitespace or braces (braces are Redis Cluster "
        f"hash tags); got {SSE_KEY_PREFIX!r}"
    )
SSE_MAX_PAYLOAD_BYTES = read_int(_env, "SSE_MAX_PAYLOAD_BYTES", default=65536, minimum=1)
SSE_STREAM_MAXLEN = read_int(_env, "SSE_STREAM_MAXLEN", default=1000, minimum=1)

# Private channels (django_sse_push/permissions.py, django_sse_push/tickets.py; docs/security.md).
SSE_PUBLIC_PREFIXES = read_list(_env, "SSE_PUBLIC_PREFIXES", default=["public."])
for _prefix in SSE_PUBLIC_PREFIXES:
    if not CHANNEL_PREFIX_RE.fullmatch(_prefix):
        raise ImproperlyConfigured(f"SSE_PUBLIC_PREFIXES entries must start channel names; got {_prefix!r}")
# Policies per channel prefix: the JSON file the SSE service's SSE_CHANNEL_POLICIES names too
# (django_sse_push/policies.py); `manage.py check` names what is wrong in it (django_sse_push.E012).
SSE_CHANNEL_POLICIES = read_str(_env, "SSE_CHANNEL_POLICIES", default="")
SSE_TICKET_TTL_SECONDS = read_int(_env, "SSE_TICKET_TTL_SECONDS", default=300, minimum=10)
# Who may read a private channel: a dotted path to `can_read_channel(user, channel) -> bool`.
SSE_CHANNEL_PERMISSION = "django_sse_push.permissions.default_can_read_channel"

# The outbox (django_sse_push/outbox.py) and its relay, `manage.py sse_relay`.
SSE_IDEMPOTENCY_SECONDS = read_int(_env, "SSE_IDEMPOTENCY_SECONDS", default=3600, minimum=1)
SSE_OUTBOX_BATCH_SIZE = read_int(_env, "SSE_OUTBOX_BATCH_SIZE", default=100, minimum=1)
SSE_OUTBOX_POLL_SECONDS = read_float(_env, "SSE_OUTBOX_POLL_SECONDS", default=1.0, minimum=0.01)
