"""The mistakes a new team makes in its first hour, each made on the stranger's project: each is named
(a system check id, one line at start, or one log line), and no page answers 5xx for it.

What a check can see fails `manage.py check`; what only a request meets (gunicorn runs no checks) is
logged once per process, however many pages meet it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devstack.processes import free_port
from tests.package import readme
from tests.package.conftest import clean_env
from tests.package.project import Project, Served

CONFIG_RE = re.compile(r'<script id="live-stream" type="application/json">(.*?)</script>', re.S)


def _settings(project: Project, name: str, *lines: str) -> str:
    """A settings module of the project's: its settings plus `lines`."""
    project.write(f"mysite/{name}.py", "from .settings import *  # noqa: F403\n\n" + "\n".join(lines) + "\n")
    return f"mysite.{name}"


def _pages(project: Project, served: Served, times: int = 3) -> list[str]:
    """The page with the tag, as the logged-in user sees it, `times` over."""
    cookie = project.session_cookie()
    pages = []
    for _ in range(times):
        response = project.get(served, "/", cookie)
        assert response.status_code == 200, response.text[:2000]
        pages.append(response.text)
    assert [status for status, _ in served.statuses() if status >= 500] == []
    return pages


def test_a_redis_url_redis_py_refuses_fails_check_and_pages_still_render(project: Project) -> None:
    """`redis://127.0.0.1:63a9/0` passed `manage.py check`, and under gunicorn every page with
    `{% live_stream %}` was a 500 (ValueError). The check names it (E001); the pages render as while
    Redis is down, and gunicorn's log has the reason once."""
    settings = _settings(project, "bad_redis_url", 'SSE_REDIS_URL = "redis://127.0.0.1:63a9/0"')
    result = project.manage("check", settings=settings, check=False)
    assert result.returncode != 0
    assert re.search(r"django_sse_push\.E001.*63a9", result.stderr), result.stderr
    with project.serve(settings, "gunicorn-bad-redis-url") as served:
        pages = _pages(project, served)
        assert all('"channels": ["public.news", "user.1"]' in page for page in pages)
        assert served.log().count("the Redis setting is unusable") == 1, served.log()


def test_forgetting_the_ticket_url_fails_check_and_pages_keep_their_public_channels(project: Project) -> None:
    """Without step 3's include, `check` passed and every page with `user=True` was a 500
    (NoReverseMatch) for a logged-in user. `check` fails with E011; the page streams its public
    channel and gunicorn's log says once what is missing."""
    settings = _settings(project, "no_ticket_url", 'ROOT_URLCONF = "mysite.urls_without_live"')
    result = project.manage("check", settings=settings, check=False)
    assert result.returncode != 0
    assert "django_sse_push.E011" in result.stderr and 'include("django_sse_push.urls")' in result.stderr
    with project.serve(settings, "gunicorn-no-ticket-url") as served:
        pages = _pages(project, served)
        assert all('"channels": ["public.news"]' in page for page in pages)
        assert served.log().count("the ticket URL is not in the project's urls.py") == 1, served.log()


def test_forgetting_migrate_is_named_by_the_database_check(project: Project) -> None:
    """Forgetting `migrate` passed `check`, and creating anything that publishes was a 500: the outbox
    table was missing. `check --database default`, the docs' words, names it (W003)."""
    project.manage(
        "shell",
        "-c",
        "from django.db import connection\nconnection.cursor().execute('CREATE DATABASE fresh')",
    )
    settings = _settings(project, "fresh_database", 'DATABASES["default"]["NAME"] = "fresh"')
    result = project.manage(*readme.CHECK_DATABASE.split()[2:], settings=settings, check=False)
    assert "django_sse_push.W003" in result.stderr, result.stderr
    assert "Run `python manage.py migrate`" in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", '"1"'])
def test_an_outbox_poll_interval_the_relay_cannot_use_fails_check(project: Project, value: str) -> None:
    """SSE_OUTBOX_POLL_SECONDS of 0, a negative number or a string passed `check` (E009 now)."""
    settings = _settings(project, "bad_poll", f"SSE_OUTBOX_POLL_SECONDS = {value}")
    result = project.manage("check", settings=settings, check=False)
    assert result.returncode != 0
    assert re.search(r"django_sse_push\.E009.*SSE_OUTBOX_POLL_SECONDS", result.stderr), result.stderr


def test_the_service_on_a_fresh_host_names_the_missing_socket_directory_in_one_line(
    project: Project, tmp_path: Path
) -> None:
    """`sse-push-service --uds /run/sse-push/sse.sock` on a host where nothing made /run/sse-push ended
    in a 62-line traceback (FileNotFoundError) that never named the path. Now: one line naming it,
    and what makes it."""
    socket = tmp_path / readme.SOCKET.lstrip("/")
    result = subprocess.run(
        [str(project.service_bin / "sse-push-service"), "--uds", str(socket)],
        env=clean_env(SSE_REDIS_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"sse-push-service: cannot listen on {socket}: directory {socket.parent} does not exist "
        "(create it, e.g. with systemd's RuntimeDirectory=sse-push)"
    ]


def test_cors_for_any_origin_is_refused_at_start_naming_the_variable(project: Project) -> None:
    """`*` would let any site read a visitor's private streams with their cookie."""
    result = subprocess.run(
        [str(project.service_bin / "sse-push-service"), "--port", str(free_port())],
        env=clean_env(SSE_REDIS_URL="redis://127.0.0.1:1/0", SSE_CORS_ORIGINS="*"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "SSE_CORS_ORIGINS='*' is invalid" in result.stderr
