"""Developing without nginx, as docs/adding-to-your-project.md's "Developing without nginx" says:
runserver on one port, the service on another, so the page and its streams are two origins.

The tag hard-coded `/sse/`, so such a page retried 404s from runserver; and the service sent no
`Access-Control-Allow-Origin`, so the docs' cross-origin recipe (`?ticket=`) could not work in a
browser. Here Chromium receives events on a public and a private channel across the two origins
(live.js, with the ticket cookie), the docs' `?ticket=` recipe works, and a page on an origin the
service does not list gets a console message saying why, and no events.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from devstack.processes import Process, free_port, wait_until
from devstack.services import RedisServer, http_status
from tests.package import readme
from tests.package.conftest import REPO
from tests.package.project import PASSWORD, USERNAME, Project

pytestmark = pytest.mark.browser


VENDOR = REPO / "django_site" / "demo" / "static" / "demo" / "vendor"
HTMX_SCRIPTS = ("htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.js")
# The htmx example (docs/client.md), cut to one list: the public and the user's fragment channel swap into it.
HTMX_PAGE = """{% load static sse_push %}<!doctype html>
<title>Fragments</title>
<script src="{% static 'htmx-2.0.11.min.js' %}"></script>
<script src="{% static 'htmx-ext-sse-2.2.4.js' %}"></script>
{% htmx_stream "public.news.html" user=True %}
  <ul id="fragments" sse-swap="message" hx-swap="beforeend"></ul>
{% endhtmx_stream %}
"""
HTMX_URLS = """from django.views.generic import TemplateView

from .urls import path, urlpatterns

urlpatterns = [*urlpatterns, path("fragments/", TemplateView.as_view(template_name="fragments.html"))]
"""


@dataclass
class Development:
    site: str  # runserver's origin, the one SSE_CORS_ORIGINS lists
    service: str


def _command(line: str, **ports: int) -> tuple[dict[str, str], list[str]]:
    """The docs' shell line with this test's ports: (its VAR=value prefix, the command)."""
    for old, new in ports.items():
        line = line.replace(old.removeprefix("p"), str(new))
    words = shlex.split(line)
    env = dict(word.split("=", 1) for word in words if "=" in word.split("/")[0] and word[0].isupper())
    return env, words[len(env) :]


@pytest.fixture(scope="module")
def development(project: Project, redis_server: RedisServer) -> Iterator[Development]:
    site_port, service_port = free_port(), free_port()
    ports = {"p6379": redis_server.port, "p8000": site_port, "p8001": service_port}
    env, command = _command(readme.DEV_SERVICE, **ports)
    service = Process.start(
        "sse-push-service-tcp",
        [str(project.service_bin / command[0]), *command[1:]],
        project.logs,
        env=project.env(**env),
    )
    setting = readme.DEV_STREAM_URL.replace("8001", str(service_port))
    # The project's own: an htmx page, with htmx and its SSE extension served from its static files.
    (project.directory / "vendor").mkdir(exist_ok=True)
    for script in HTMX_SCRIPTS:
        shutil.copy(VENDOR / script, project.directory / "vendor" / script)
    (project.directory / "templates" / "fragments.html").write_text(HTMX_PAGE)
    project.write("mysite/urls_development.py", HTMX_URLS)
    project.write(
        "mysite/development.py",
        f"from .settings import *  # noqa: F403\n\n{setting}\n"
        'STATICFILES_DIRS = [BASE_DIR / "vendor"]  # noqa: F405\n'
        'ROOT_URLCONF = "mysite.urls_development"\n',
    )
    _, command = _command(readme.DEV_RUNSERVER, **ports)
    runserver = Process.start(
        "runserver",
        [str(project.bin / "python"), *command[1:], "--noreload"],
        project.logs,
        env=project.env("mysite.development"),
        cwd=project.directory,
    )
    try:
        wait_until(lambda: http_status(service_port, "/readyz") == 200, 20, "sse-push-service", service)
        wait_until(lambda: http_status(site_port, "/admin/login/") == 200, 30, "runserver", runserver)
        yield Development(f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{service_port}")
    finally:
        runserver.stop()
        service.stop()


def _log_in(page: Page, origin: str) -> None:
    page.goto(origin + "/admin/login/?next=/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(origin + "/")


def _publish(project: Project, *lines: str) -> None:
    project.manage("shell", "-c", readme.PUBLISH_IMPORT + "\n".join(lines))


FIND_USER = f"from django.contrib.auth.models import User\nuser = User.objects.get(username={USERNAME!r})"


def test_a_page_on_runserver_gets_events_from_the_service_on_another_port(
    project: Project, development: Development, page: Page
) -> None:
    _log_in(page, development.site)
    page.wait_for_function("window.live && window.live.state === 'open'", timeout=10_000)
    _publish(project, readme.PUBLISH_PUBLIC)
    expect(page.locator("#news li")).to_have_text(["public.news: Hello"], timeout=5000)
    _publish(project, FIND_USER, readme.PUBLISH_PRIVATE)
    expect(page.locator("#news li")).to_have_text(
        ["public.news: Hello", "user.1: Just for you"], timeout=5000
    )


def test_an_htmx_page_on_runserver_swaps_in_the_users_fragments_from_the_other_port(
    project: Project, development: Development, page: Page
) -> None:
    """`{% htmx_stream ... user=True %}` across the two origins: htmx-stream.js gets the ticket from
    runserver, htmx's extension opens the service's URL with credentials, and the user's fragment
    channel `user.<pk>.html` (not the JSON `user.<pk>`) swaps HTML into the page."""
    _log_in(page, development.site)
    page.goto(development.site + "/fragments/")
    stream = page.locator("[data-sse-push-connect]")
    expect(stream).to_have_attribute("data-sse-push-state", "open", timeout=10_000)
    assert (stream.get_attribute("sse-connect") or "").startswith(development.service + "/sse/?")
    _publish(project, 'publish("public.news.html", "<li>Hello</li>", as_text=True)')
    _publish(project, FIND_USER, 'publish(f"user.{user.pk}.html", "<li>Just for you</li>", as_text=True)')
    expect(page.locator("#fragments li")).to_have_text(["Hello", "Just for you"], timeout=5000)


def test_the_readmes_cross_origin_recipe_works_in_a_browser(
    project: Project, development: Development, page: Page
) -> None:
    """The Publishing section's recipe: ask the site for a ticket, then open the service's stream on
    its own origin with `?ticket=`, no cookie needed."""
    _log_in(page, development.site)
    page.evaluate(
        """async (sse) => {
            const csrfToken = document.cookie.match(/csrftoken=([^;]+)/)[1];
            const body = new URLSearchParams([["channel", "user.1"]]);
            const headers = {"X-CSRFToken": csrfToken};
            const answer = await fetch("/live/ticket", {method: "POST", body, headers});
            const {ticket} = await answer.json();
            window.received = [];
            const source = new EventSource(`${sse}/sse/user.1?ticket=${ticket}`);
            source.onmessage = (event) => window.received.push(JSON.parse(event.data).title);
            await new Promise((resolve, reject) => { source.onopen = resolve; source.onerror = reject; });
        }""",
        development.service,
    )
    _publish(project, FIND_USER, readme.PUBLISH_PRIVATE)
    page.wait_for_function("window.received.length === 1", timeout=5000)
    assert page.evaluate("window.received") == ["Just for you"]


def test_a_page_on_an_origin_the_service_does_not_list_says_why_in_the_console(
    development: Development, page: Page
) -> None:
    """`localhost` is not `127.0.0.1` to a browser: the service lists only the latter, so the page
    gets no events, and Chromium's console names the missing header rather than staying silent."""
    messages: list[ConsoleMessage] = []
    page.on("console", lambda message: messages.append(message))
    page.goto(development.site.replace("127.0.0.1", "localhost") + "/")
    page.wait_for_function("window.live && window.live.state === 'reconnecting'", timeout=10_000)
    assert any("Access-Control-Allow-Origin" in message.text for message in messages), [
        message.text for message in messages
    ]


def test_the_service_answers_cors_with_credentials_to_the_listed_origin_only(
    development: Development,
) -> None:
    """On the wire: the listed origin is echoed with credentials allowed (never `*`, which browsers
    refuse with credentials), other origins get no CORS headers, and a preflight is answered."""
    url = development.service + "/sse/public.news"
    with httpx.stream("GET", url, headers={"Origin": development.site}, timeout=5) as listed:
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == development.site
        assert listed.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in listed.headers["vary"]
    other = "http://elsewhere.example"
    with httpx.stream("GET", url, headers={"Origin": other}, timeout=5) as unlisted:
        assert "access-control-allow-origin" not in unlisted.headers
    preflight = httpx.options(
        url,
        headers={
            "Origin": development.site,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
        timeout=5,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == development.site
