"""Settings as django-eventstream's README has them, read from the environment the bench sets."""

import os

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["daphne", "django_eventstream"]
ROOT_URLCONF = "eventstream_site.urls"
ASGI_APPLICATION = "eventstream_site.asgi.application"
# No event storage: the project's peer rows compare live fan-out, and storage would put a
# database write in django-eventstream's publish path only.
DATABASES: dict[str, dict[str, str]] = {}
EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": int(os.environ["BENCH_REDIS_PORT"]), "db": 0}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
