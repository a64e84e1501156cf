"""A stranger adds push to a new Django project with the docs, and a browser gets the events.

Both wheels are built by `make dist` from this checkout and installed into fresh virtualenvs, the
Django app (with gunicorn and psycopg) into one and the SSE service into another, so nothing of the
checkout is on their path. A project made by `django-admin startproject` on PostgreSQL is configured
with the snippets of docs/adding-to-your-project.md (the last tests check they are the docs'
words), served by gunicorn behind nginx configured with the docs' two nginx snippets, and
Chromium receives events published from the project's shell on a public and on a private channel.
Redis and PostgreSQL are started by this checkout's helpers; the project's Django and the service run
only from the fresh virtualenvs. The test prints the time from `make dist` to the first event.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import time
from pathlib import Path

import django
import pytest
from playwright.sync_api import Page, expect

from devstack.processes import free_port
from tests.package import readme
from tests.package.conftest import REPO, clean_env, run
from tests.package.project import PASSWORD, USERNAME, Project

pytestmark = pytest.mark.browser


def _publish(project: Project, *lines: str) -> None:
    """Runs the docs' publish lines in the project's `manage.py shell`."""
    project.manage("shell", "-c", readme.PUBLISH_IMPORT + "\n".join(lines))


def test_a_new_project_gets_events_on_a_public_and_a_private_channel(
    project: Project, page: Page, started: float, capsys: pytest.CaptureFixture[str]
) -> None:
    where = run(
        [str(project.bin / "python"), "-c", "import django_sse_push; print(django_sse_push.__file__)"],
        project.directory,
        clean_env(),
    )
    assert Path(where.strip()).is_relative_to(project.bin.parent), where
    assert not Path(where.strip()).is_relative_to(REPO), where
    # On the matrix's Django 6 leg the stranger starts on Django 6, not on the site's own pin.
    theirs = run([str(project.bin / "python"), "-c", "import django; print(django.__version__)"], REPO)
    assert theirs.strip() == django.__version__

    page.goto(project.url + "/admin/login/?next=/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(project.url + "/")
    page.wait_for_function("window.live && window.live.state === 'open'", timeout=10_000)

    _publish(project, readme.PUBLISH_PUBLIC)
    expect(page.locator("#news li")).to_have_text(["public.news: Hello"], timeout=5000)
    with capsys.disabled():
        print(
            f"\nstranger: first event in the browser {time.monotonic() - started:.1f} s "
            "after `make dist` began"
        )
    find_user = f"from django.contrib.auth.models import User\nuser = User.objects.get(username={USERNAME!r})"
    _publish(project, find_user, readme.PUBLISH_PRIVATE)
    expect(page.locator("#news li")).to_have_text(
        ["public.news: Hello", "user.1: Just for you"], timeout=5000
    )
    assert project.relay is not None and project.relay.running, "the relay did not keep running"
    assert project.served is not None
    assert [status for status, _ in project.served.statuses() if status >= 500] == []


def test_manage_py_check_names_a_broken_setting(project: Project) -> None:
    assert project.manage("check").stdout.strip() == "System check identified no issues (0 silenced)."
    database = project.manage(*readme.CHECK_DATABASE.split()[2:])
    assert database.stdout.strip() == "System check identified no issues (0 silenced)."
    project.write(
        "mysite/broken_settings.py", "from .settings import *  # noqa: F403\n\nSSE_TICKET_TTL_SECONDS = 5\n"
    )
    result = project.manage("check", settings="mysite.broken_settings", check=False)
    assert result.returncode != 0
    assert re.search(r"django_sse_push\.E005.*SSE_TICKET_TTL_SECONDS", result.stderr), result.stderr


def test_the_readme_section_is_what_this_test_does() -> None:
    """Each snippet the stranger tests apply is in the docs' section, word for word (indentation
    aside), and nginx's template has the location's directives too."""
    section = readme.unindented(readme.section(readme.ADD_IT))
    for snippet in readme.ADD_IT_SNIPPETS:
        assert readme.unindented(snippet) in section, snippet
    template = (REPO / "nginx" / "nginx.conf.template").read_text()
    server = template.split("    server {", 1)[1]
    for directive in readme.NGINX_LOCATION.splitlines()[1:-1]:
        assert directive.strip() in server, directive


def test_the_readme_puts_the_upstream_where_nginx_allows_it(project: Project, tmp_path: Path) -> None:
    """README step 7 said to add the `upstream` "to the server": done literally, `nginx -t` failed
    ("upstream" directive is not allowed here). The step now puts it in `http` (Debian's conf.d/);
    the stack above runs from exactly that layout, and `nginx -t` passes on it with the docs'
    socket path too."""
    from tests.package.project import nginx_test, write_nginx

    config = write_nginx(tmp_path, free_port(), Path(readme.SOCKET), free_port(), tmp_path)
    tested = nginx_test(config)
    assert tested.returncode == 0, tested.stderr
    assert "syntax is ok" in tested.stderr
    assert readme.SOCKET in (tmp_path / "conf.d" / "sse-push.conf").read_text()


def test_the_systemd_unit_makes_the_socket_directory_nginx_reaches() -> None:
    """The docs' unit for the service creates the directory of the socket the docs' upstream
    names, owned by the service's user and nginx's group, closed to others."""
    section = readme.section(readme.SYSTEMD)
    units = re.findall(r"```ini\n# (\S+)\n(.*?)```", section, re.S)
    assert [name for name, _ in units] == [
        "/etc/systemd/system/sse-push.service",
        "/etc/systemd/system/shop-sse-relay.service",
    ]
    service, relay = (configparser.ConfigParser(strict=True, interpolation=None) for _ in units)
    service.read_string(units[0][1])
    relay.read_string(units[1][1])
    assert service["Service"]["RuntimeDirectory"] == Path(readme.SOCKET).parent.name
    assert service["Service"]["RuntimeDirectoryMode"] == "0750"
    assert service["Service"]["Group"] == "www-data"
    assert service["Service"]["ExecStart"].endswith(f"sse-push-service --uds {readme.SOCKET}")
    assert relay["Service"]["ExecStart"].endswith(readme.RELAY.removeprefix("python "))


def test_the_readmes_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Every key and value of the docs' units is one systemd knows; all it may say is that the
    programs are not installed here (the paths are the team's)."""
    units = re.findall(r"```ini\n# \S+/(\S+)\n(.*?)```", readme.section(readme.SYSTEMD), re.S)
    for name, text in units:
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name, _ in units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert [line for line in said if "is not executable: No such file or directory" not in line] == []


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
