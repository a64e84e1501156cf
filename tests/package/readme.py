"""The docs' words a new team applies, as the stranger tests apply them, and where they stand.

Each snippet is checked to be in its section of README.md or docs/*.md word for word (indentation
aside), so the tests run what the docs say and nothing kinder."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ADD_IT = "## Add it to your Django project"
SYSTEMD = "## Deploying with systemd"
HTMX = "## htmx pages"

# Step 1: no release yet, the wheels from a clone.
MAKE_DIST = "make dist"
PIP_INSTALL_APP = "pip install dist/django_sse_push-0.1.0-py3-none-any.whl"
PIP_INSTALL_SERVICE = "pip install dist/sse_push_service-0.1.0-py3-none-any.whl"
# Step 2; `6379` is the test Redis's port.
INSTALLED_APP = '    "django_sse_push",\n'
SETTINGS = 'SSE_REDIS_URL = "redis://127.0.0.1:6379/0"\n'
MIGRATE = "python manage.py migrate"
CHECK_DATABASE = "python manage.py check --database default"
# Step 3.
URL_IMPORT = "from django.urls import include, path\n"
URL = '    path("live/", include("django_sse_push.urls")),\n'
# Step 4.
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
# Step 5.
PUBLISH_IMPORT = "from django_sse_push.publish import publish\n"
PUBLISH_PUBLIC = 'publish("public.news", {"title": "Hello"})'
PUBLISH_PRIVATE = 'publish(f"user.{user.pk}", {"title": "Just for you"})'
# Step 6; the socket's path is the docs' in the snippets, the test's own directory when run.
SOCKET = "/run/sse-push/sse.sock"
SERVICE = f"SSE_REDIS_URL=redis://127.0.0.1:6379/0 sse-push-service --uds {SOCKET}"
RELAY = "python manage.py sse_relay"
# Step 7: the upstream in `http` (Debian: conf.d/), the location in the site's `server`.
NGINX_UPSTREAM = f"""\
upstream sse {{
    server unix:{SOCKET};
}}"""
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
# Developing without nginx.
DEV_SERVICE = (
    "SSE_REDIS_URL=redis://127.0.0.1:6379/0 SSE_CORS_ORIGINS=http://127.0.0.1:8000 "
    "sse-push-service --port 8001"
)
DEV_RUNSERVER = "python manage.py runserver 127.0.0.1:8000"
DEV_STREAM_URL = 'SSE_STREAM_URL = "http://127.0.0.1:8001/sse/"'

ADD_IT_SNIPPETS = (
    MAKE_DIST,
    PIP_INSTALL_APP,
    PIP_INSTALL_SERVICE,
    INSTALLED_APP,
    SETTINGS,
    MIGRATE,
    CHECK_DATABASE,
    URL_IMPORT,
    URL,
    TEMPLATE,
    PUBLISH_IMPORT,
    PUBLISH_PUBLIC,
    PUBLISH_PRIVATE,
    SERVICE,
    RELAY,
    NGINX_UPSTREAM,
    NGINX_LOCATION,
    DEV_SERVICE,
    DEV_RUNSERVER,
    DEV_STREAM_URL,
)


def unindented(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines())


def section(heading: str) -> str:
    """The text under `heading`, up to the next `## ` heading, in README.md or the one docs/*.md
    page that holds it."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    found = [text for text in (page.read_text() for page in pages) if f"\n{heading}\n" in text]
    assert len(found) == 1, f"{heading!r} is in {len(found)} pages, not one"
    return found[0].split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
