"""A new team's project: made by `django-admin startproject`, configured with the docs' snippets,
on PostgreSQL, served by gunicorn behind nginx configured with the docs' two nginx snippets.

Only the project's own bits are this module's words: its database, template folder, static root, the
page it shows, and where nginx listens. Processes are devstack's; the project runs only from the fresh
virtualenvs.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.processes import Process, free_port, wait_until
from devstack.services import http_status, nginx_binary
from tests.package import readme
from tests.package.conftest import clean_env, run

SETTINGS_MODULE = "mysite.settings"
PASSWORD = "stranger-password-1"
USERNAME = "stranger"
# Not the docs': the page the tests look at, made the usual way.
PAGE_URL = """
from django.views.generic import TemplateView

urlpatterns.append(path("", TemplateView.as_view(template_name="news.html")))
"""
# gunicorn's access log, one request a line: the status first, so a 5xx is easy to find.
ACCESS_LOG_FORMAT = "%(s)s %(m)s %(U)s"
ACCESS_LINE = re.compile(r"^(\d{3}) (GET|POST|HEAD) (\S+)$", re.M)


@dataclass
class Served:
    """A gunicorn serving the project with one settings module."""

    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def statuses(self) -> list[tuple[int, str]]:
        """(status, path) of every request gunicorn answered so far."""
        return [(int(s), path) for s, _, path in ACCESS_LINE.findall(self.process.log_path.read_text())]

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


@dataclass
class Project:
    directory: Path
    bin: Path
    service_bin: Path
    logs: Path
    # Set once the stack serves: nginx's URL, the relay, the gunicorn behind nginx.
    url: str = ""
    relay: Process | None = None
    served: Served | None = None

    def env(self, settings: str = SETTINGS_MODULE, **extra: str) -> dict[str, str]:
        # Set, not left to manage.py's setdefault: this process's DJANGO_SETTINGS_MODULE reaches
        # devstack's processes.
        return clean_env(DJANGO_SETTINGS_MODULE=settings, **extra)

    def manage(
        self, *args: str, settings: str = SETTINGS_MODULE, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / "python"), "manage.py", *args],
            cwd=self.directory,
            env=self.env(settings, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}"
        return result

    def write(self, relative: str, text: str) -> None:
        """A file of the project's, e.g. a settings module a test tries a mistake in."""
        (self.directory / relative).write_text(text)

    @contextmanager
    def serve(self, settings: str = SETTINGS_MODULE, name: str = "gunicorn") -> Iterator[Served]:
        """gunicorn, as a site runs in production (it runs no system checks)."""
        port = free_port()
        args = [str(self.bin / "gunicorn"), "mysite.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "4"]
        args += ["--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT]
        process = Process.start(name, args, self.logs, env=self.env(settings), cwd=self.directory)
        try:
            wait_until(lambda: http_status(port, "/admin/login/") == 200, 30, name, process)
            yield Served(process, port)
        finally:
            process.stop()

    def session_cookie(self, settings: str = SETTINGS_MODULE) -> dict[str, str]:
        """The cookie of a logged-in session of the project's user, made in its shell."""
        code = (
            "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"user = get_user_model().objects.get(username={USERNAME!r})\n"
            "session = SessionStore()\n"
            "session[SESSION_KEY] = str(user.pk)\n"
            "session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
            "session.create()\n"
            "print(session.session_key)"
        )
        # The last line: Django 5.2's shell first says what it imported.
        return {"sessionid": self.manage("shell", "-c", code, settings=settings).stdout.split()[-1]}

    def get(self, served: Served, path: str, cookies: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(served.url + path, cookies=cookies, timeout=10)


def make_project(root: Path, bin_dir: Path, redis_port: int, database_url: str) -> Path:
    """`django-admin startproject`, then the docs' steps, then the project's own bits."""
    run([str(bin_dir / "django-admin"), "startproject", "mysite"], root.parent, clean_env())
    settings = root / "mysite" / "settings.py"
    text = settings.read_text()
    text = re.sub(
        r"( *.django\.contrib\.staticfiles.,\n)", lambda m: m[1] + readme.INSTALLED_APP, text, count=1
    )
    assert readme.INSTALLED_APP in text, "no INSTALLED_APPS list found"
    text += "\n" + readme.SETTINGS.replace("6379", str(redis_port))
    text += _database(database_url)
    text += 'TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]\nSTATIC_ROOT = BASE_DIR / "static"\n'
    settings.write_text(text)
    urls = root / "mysite" / "urls.py"
    text = urls.read_text()
    # Kept as startproject made it: the URLconf of a project that forgot step 3.
    (root / "mysite" / "urls_without_live.py").write_text(text + PAGE_URL)
    text = text.replace("from django.urls import path\n", readme.URL_IMPORT)
    text = text.replace("urlpatterns = [\n", "urlpatterns = [\n" + readme.URL)
    urls.write_text(text + PAGE_URL)
    (root / "templates").mkdir()
    (root / "templates" / "news.html").write_text(f"<!doctype html>\n<title>News</title>\n{readme.TEMPLATE}")
    return root


def _database(url: str) -> str:
    """The project's DATABASES for devstack's PostgreSQL (`postgres://user@host:port/name`)."""
    match = re.fullmatch(r"postgres://(\w+)@([\d.]+):(\d+)/(\w+)", url)
    assert match, url
    user, host, port, name = match.groups()
    return (
        'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", '
        f'"NAME": "{name}", "USER": "{user}", "HOST": "{host}", "PORT": "{port}"}}}}\n'
    )


def write_nginx(run_dir: Path, port: int, socket: Path, django_port: int, static_root: Path) -> Path:
    """nginx laid out as Debian's: the main file includes conf.d/*.conf in `http` (the docs'
    upstream goes there) and sites-enabled/* (the site's `server`, the docs' location inside)."""
    for name in ("conf.d", "sites-enabled", "temp"):
        (run_dir / name).mkdir(parents=True, exist_ok=True)
    (run_dir / "conf.d" / "sse-push.conf").write_text(
        readme.NGINX_UPSTREAM.replace(readme.SOCKET, str(socket)) + "\n"
    )
    location = "\n".join("    " + line for line in readme.NGINX_LOCATION.splitlines())
    (run_dir / "sites-enabled" / "mysite").write_text(
        "server {\n"
        f"    listen 127.0.0.1:{port};\n"
        f"    location /static/ {{ alias {static_root}/; }}\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{django_port}; proxy_set_header Host $http_host; }}\n"
        f"{location}\n"
        "}\n"
    )
    temp = run_dir / "temp"
    config = run_dir / "nginx.conf"
    config.write_text(
        f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"
        f"pid {run_dir}/nginx.pid;\n"
        "worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    access_log off;\n"
        + "".join(
            f"    {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"    include {run_dir}/conf.d/*.conf;\n"
        f"    include {run_dir}/sites-enabled/*;\n"
        "}\n"
    )
    return config


def nginx_test(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the configuration, as a team runs it before reloading."""
    return subprocess.run(
        [nginx_binary(), "-t", "-e", "stderr", "-c", str(config)], capture_output=True, text=True, timeout=30
    )


def start_nginx(config: Path, port: int, logs: Path) -> Process:
    process = Process.start(
        "nginx", [nginx_binary(), "-e", "stderr", "-c", str(config), "-g", "daemon off;"], logs
    )
    wait_until(lambda: http_status(port, "/static/sse_push/live.js") == 200, 10, "nginx", process)
    return process
