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
from live import keys


@pytest.fixture
def site(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[DjangoSite]:
    # Plain HTTP here, so the CSRF cookie must not be Secure or the client drops it.
    overrides = {"SSE_KEY_PREFIX": key_prefix, "DJANGO_SECURE_COOKIES": "false"}
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

        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert match
        form = {"csrfmiddlewaretoken": match.group(1), "channel": "demo", "event": "", "data": "7"}
        published = client.post("/", data=form)

    assert published.status_code == 302
    [(_, fields)] = redis_client.xrange(keys.stream_key(key_prefix, "demo"))
    assert fields == {b"event": b"", b"data": b"7"}
