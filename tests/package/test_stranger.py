"""A stranger adds push to a new Django project with pip and the README, and a browser gets the events.

Both wheels are built from this checkout and installed into fresh virtualenvs, the Django app into
one and the SSE service into another, so nothing of the checkout is on their path. A project made by
`django-admin startproject` is configured with the snippets of the README's "Add it to your Django
project" (the last test checks they are the README's words), the service runs from its console script
behind the project's nginx template, and Chromium receives events published from the project's shell
on a public and on a private channel. Redis and nginx are started by this checkout's helpers; the
project's Django and the service run only from the fresh virtualenvs.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.processes import Process, free_port, wait_until
from devstack.services import Nginx, RedisServer, http_status
from tests.package.conftest import REPO, Venv, clean_env, run

pytestmark = pytest.mark.browser

# The README's snippets, in the order a developer applies them; `6379` is the test Redis's port.
INSTALLED_APP = '    "django_sse_push",\n'
SETTINGS = 'SSE_REDIS_URL = "redis://127.0.0.1:6379/0"\n'
URL_IMPORT = "from django.urls import include, path\n"
URL = '    path("live/", include("django_sse_push.urls")),\n'
TEMPLATE = """\
{% load sse_push %}
<ul id="news"></ul>
{% live_stream "public.news" user=True %}
<script>
  live.on("message", (data, meta) => {
    const item = document.createElement("li");
    item.textContent = `${meta.channel}: ${data.title}`;
    document.getElementById("news").append(item);
  });
</script>
"""
PUBLISH_IMPORT = "from django_sse_push.publish import publish\n"
PUBLISH_PUBLIC = 'publish("public.news", {"title": "Hello"})'
PUBLISH_PRIVATE = 'publish(f"user.{user.pk}", {"title": "Just for you"})'
SERVICE = "SSE_REDIS_URL=redis://127.0.0.1:6379/0 sse-push-service --uds /run/sse-push/sse.sock"
NGINX_LOCATION = """\
location /sse/ {
    proxy_pass http://sse;
    proxy_buffering off;
    proxy_cache off;
    gzip off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_read_timeout 120s;
}"""

# Not the README's: the page this test looks at, made the usual way.
PAGE_URL = """
from django.views.generic import TemplateView

urlpatterns.append(path("", TemplateView.as_view(template_name="news.html")))
"""
PASSWORD = "stranger-password-1"
# Set, not left to manage.py's setdefault: this process's DJANGO_SETTINGS_MODULE reaches devstack's
# processes.
SETTINGS_MODULE = "mysite.settings"


@dataclass
class Project:
    directory: Path
    bin: Path
    service_bin: Path
    url: str

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / "python"), "manage.py", *args],
            cwd=self.directory,
            env=clean_env(DJANGO_SETTINGS_MODULE=SETTINGS_MODULE),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}"
        return result


def _make_project(root: Path, bin_dir: Path, redis_port: int) -> Path:
    """`django-admin startproject`, then the README's steps, then a page that uses the template tag."""
    run([str(bin_dir / "django-admin"), "startproject", "mysite"], root.parent, clean_env())
    settings = root / "mysite" / "settings.py"
    text = settings.read_text()
    text = re.sub(r"( *.django\.contrib\.staticfiles.,\n)", lambda m: m[1] + INSTALLED_APP, text, count=1)
    assert INSTALLED_APP in text, "no INSTALLED_APPS list found"
    # The project's own bits: a template folder for the page, and static files for nginx.
    text += "\n" + SETTINGS.replace("6379", str(redis_port))
    text += 'TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]\nSTATIC_ROOT = BASE_DIR / "static"\n'
    settings.write_text(text)
    urls = root / "mysite" / "urls.py"
    text = urls.read_text().replace("from django.urls import path\n", URL_IMPORT)
    text = text.replace("urlpatterns = [\n", "urlpatterns = [\n" + URL)
    text += PAGE_URL
    urls.write_text(text)
    (root / "templates").mkdir()
    (root / "templates" / "news.html").write_text(f"<!doctype html>\n<title>News</title>\n{TEMPLATE}")
    return root


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, fresh_venv: Venv, redis_server: RedisServer
) -> Iterator[Project]:
    tmp_path = tmp_path_factory.mktemp("stranger")
    django_bin = fresh_venv(["django-sse-push"])
    service_bin = fresh_venv(["sse-push-service"])
    root = _make_project(tmp_path / "mysite", django_bin, redis_server.port)
    project = Project(root, django_bin, service_bin, "")
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        project.manage(*command)
    admin = ["createsuperuser", "--noinput", "--username", "stranger", "--email", "s@example.com"]
    subprocess.run(
        [str(django_bin / "python"), "manage.py", *admin],
        cwd=root,
        env=clean_env(DJANGO_SETTINGS_MODULE=SETTINGS_MODULE, DJANGO_SUPERUSER_PASSWORD=PASSWORD),
        check=True,
        capture_output=True,
    )

    logs = tmp_path / "logs"
    logs.mkdir()
    socket = tmp_path / "sse.sock"
    service = Process.start(
        "sse-push-service",
        [str(service_bin / "sse-push-service"), "--uds", str(socket)],
        logs,
        env=clean_env(SSE_REDIS_URL=redis_server.url),
        cwd=tmp_path,
    )
    django_port = free_port()
    django = Process.start(
        "runserver",
        [str(django_bin / "python"), "manage.py", "runserver", f"127.0.0.1:{django_port}", "--noreload"],
        logs,
        env=clean_env(DJANGO_SETTINGS_MODULE=SETTINGS_MODULE),
        cwd=root,
    )
    nginx = Nginx(tmp_path, free_port(), f"unix:{socket}", f"127.0.0.1:{django_port}", root / "static")
    try:
        wait_until(lambda: http_status(socket, "/readyz") == 200, 20, "sse-push-service", service)
        wait_until(lambda: http_status(django_port, "/admin/login/") == 200, 20, "runserver", django)
        nginx.start()
        project.url = nginx.url
        yield project
    finally:
        nginx.stop()
        django.stop()
        service.stop()


def _publish(project: Project, *lines: str) -> None:
    """Runs the README's publish lines in the project's `manage.py shell`."""
    project.manage("shell", "-c", PUBLISH_IMPORT + "\n".join(lines))


def test_a_new_project_gets_events_on_a_public_and_a_private_channel(project: Project, page: Page) -> None:
    where = run(
        [str(project.bin / "python"), "-c", "import django_sse_push; print(django_sse_push.__file__)"],
        project.directory,
        clean_env(),
    )
    assert Path(where.strip()).is_relative_to(project.bin.parent), where
    assert not Path(where.strip()).is_relative_to(REPO), where

    page.goto(project.url + "/admin/login/?next=/")
    page.fill("#id_username", "stranger")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(project.url + "/")
    page.wait_for_function("window.live && window.live.state === 'open'", timeout=10_000)

    _publish(project, PUBLISH_PUBLIC)
    expect(page.locator("#news li")).to_have_text(["public.news: Hello"], timeout=5000)
    find_user = "from django.contrib.auth.models import User\nuser = User.objects.get(username='stranger')"
    _publish(project, find_user, PUBLISH_PRIVATE)
    expect(page.locator("#news li")).to_have_text(
        ["public.news: Hello", "user.1: Just for you"], timeout=5000
    )


def test_manage_py_check_names_a_broken_setting(project: Project) -> None:
    assert project.manage("check").stdout.strip() == "System check identified no issues (0 silenced)."
    broken = project.directory / "mysite" / "broken_settings.py"
    broken.write_text("from .settings import *  # noqa: F403\n\nSSE_TICKET_TTL_SECONDS = 5\n")
    result = project.manage("check", "--settings", "mysite.broken_settings", check=False)
    assert result.returncode != 0
    assert re.search(r"django_sse_push\.E005.*SSE_TICKET_TTL_SECONDS", result.stderr), result.stderr


def _unindented(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines())


def test_the_readme_section_is_what_this_test_does() -> None:
    """Each snippet this test applies is in the README's section, word for word (indentation aside)."""
    readme = (REPO / "README.md").read_text()
    section = _unindented(readme.split("## Add it to your Django project", 1)[1].split("\n## ", 1)[0])
    snippets = (INSTALLED_APP, SETTINGS, URL_IMPORT, URL, TEMPLATE, PUBLISH_IMPORT)
    for snippet in (*snippets, PUBLISH_PUBLIC, PUBLISH_PRIVATE, SERVICE, NGINX_LOCATION):
        assert _unindented(snippet) in section, snippet
    template = (REPO / "nginx" / "nginx.conf.template").read_text()
    server = template.split("    server {", 1)[1]
    for directive in NGINX_LOCATION.splitlines()[1:-1]:
        assert directive.strip() in server, directive


def test_the_console_script_stops_at_start_naming_a_bad_variable(project: Project) -> None:
    result = subprocess.run(
        [str(project.service_bin / "sse-push-service"), "--port", str(free_port())],
        env=clean_env(SSE_REDIS_URL="redis://127.0.0.1:1/0", SSE_RETRY_MS="soon"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "SSE_RETRY_MS='soon' is invalid" in result.stderr
