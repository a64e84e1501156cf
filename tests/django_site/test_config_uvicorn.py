"""The site as deployed: migrate, collectstatic, then uvicorn config.asgi:application."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from devstack.processes import free_port
from devstack.services import DjangoSite
from django_sse_push import keys
from tests.support.site import log_in


@pytest.fixture
def site(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[DjangoSite]:
    overrides = {"SSE_KEY_PREFIX": key_prefix}
    started = DjangoSite(tmp_path, redis_url, free_port(), overrides=overrides).start()
    yield started
    started.stop()


def test_uvicorn_serves_health_page_static_files_and_publishes(
    site: DjangoSite, redis_client: redis.Redis, key_prefix: str
) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{site.port}", timeout=10) as client:
        assert client.get("/healthz").text == "ok"
        page = client.get("/")
        assert page.status_code == 200
        # Served by Django itself from DJANGO_STATIC_ROOT when run without nginx.
        script = client.get("/static/demo/demo.js")
        assert script.status_code == 200
        assert "new EventSource" in script.text

        # devstack created the demo users after migrating.
        log_in(client, "alice", "sse-demo")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/").text)
        assert match
        form = {"csrfmiddlewaretoken": match.group(1), "channel": "public.demo", "event": "", "data": "7"}
        published = client.post("/", data=form)

    assert published.status_code == 302
    [(_, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "public.demo"))
    assert fields == {b"event": b"", b"data": b"7"}
