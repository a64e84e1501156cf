"""The whole stack through nginx: Django publishes, nginx routes, an SSE client receives."""

from __future__ import annotations

import json
import re

import httpx

from devstack.stack import Stack
from sse_service.protocol import channel_list_tag
from tests.support.sse import open_stream

ID = re.compile(r"\d+-\d+")


async def test_manage_py_publish_reaches_a_client_through_nginx(stack: Stack, channel: str) -> None:
    async with open_stream(f"{stack.nginx.url}/sse/{channel}") as stream:
        result = stack.django.manage("publish", channel, '{"text": "hi", "n": 1}', "--event", "notice")
        event_id = result.stdout.strip()
        await stream.wait_for_events(1)
    assert ID.fullmatch(event_id)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    # Heartbeats (every second here) may come first: manage.py takes about as long to start.
    assert stream.raw.replace(b": ping\n\n", b"") == (
        f"retry: 3000\nid: {channel}/0-0\nevent: sse.start\ndata: {{}}\n: connected\n\n".encode()
        + f'id: {channel}/{event_id}\nevent: notice\ndata: {{"text":"hi","n":1}}\n\n'.encode()
    )


async def test_django_publish_reaches_several_channels_on_one_connection(stack: Stack, channel: str) -> None:
    other = channel + ".b"
    code = (
        "from django_sse_push.publish import publish\n"
        f"print(publish({channel!r}, {{'when': __import__('datetime').date(2026, 1, 2)}}))\n"
        f"print(publish({other!r}, ['x', 1.5, None], event='update'))\n"
    )
    async with open_stream(f"{stack.nginx.url}/sse/?channel={channel}&channel={other}") as stream:
        first, second = stack.django.manage("shell", "-v", "0", "-c", code).stdout.split()
        await stream.wait_for_events(2)
    # Each id also carries the connection's other channels' positions, so one id resumes both
    # (the other channel had no events yet: 0-0), by its index in the connection's channel list.
    tag = channel_list_tag([channel, other]).decode()
    assert stream.raw.endswith(
        f'id: {channel}/{first},~{tag},1:0-0\ndata: {{"when":"2026-01-02"}}\n\n'.encode()
        + f'id: {other}/{second},~{tag},0:{first}\nevent: update\ndata: ["x",1.5,null]\n\n'.encode()
    )
    assert [json.loads(e.data) for e in stream.events] == [{"when": "2026-01-02"}, ["x", 1.5, None]]


async def test_demo_page_and_its_static_files_come_through_nginx(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.nginx.url) as client:
        page = await client.get("/")
        scripts = re.findall(r'src="(/static/[^"]+\.js)"', page.text)
        assert page.status_code == 200
        assert scripts, "the demo page loads its script from /static/"
        script = await client.get(scripts[0])
    assert script.status_code == 200
    assert "EventSource" in script.text
    assert script.headers["cache-control"] == "public, max-age=86400"


async def test_probes_are_not_public_through_nginx(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.nginx.url) as client:
        statuses = [(await client.get(path)).status_code for path in ("/healthz", "/readyz", "/metrics")]
    assert statuses == [404, 404, 404]


async def test_bad_channel_through_nginx_is_a_400_with_a_reason(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.nginx.url) as client:
        response = await client.get("/sse/bad%20name")
    assert response.status_code == 400
    assert "Invalid channel name" in response.text
