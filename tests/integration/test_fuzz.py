"""Random requests to the running service: always a 2xx or 4xx with a body, and it keeps serving others.

Paths, query strings (channel lists, tickets, junk), Last-Event-ID, ticket cookies and
X-Forwarded-For headers come from hypothesis; a 5xx, an empty body, or a service that stops
streaming to a well-behaved client afterwards fails the test.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlencode

import httpx
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.services import SseService
from tests.support.publish import publish
from tests.support.sse import open_stream

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
CHANNEL_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
CHANNELS = st.one_of(
    CHANNEL_NAME.map(lambda name: "public." + name),
    CHANNEL_NAME,
    st.sampled_from(["user.1", "staff.x", "a" * 128, "a" * 129, "public.", "-x", "../x"]),
    ANY_TEXT,
)
PATHS = st.one_of(
    st.just("/sse/"),
    CHANNELS.map(lambda name: "/sse/" + quote(name, safe="")),
    ANY_TEXT.map(lambda text: "/" + quote(text, safe="/")),
    st.sampled_from(["/sse", "/sse//", "/sse/a/b", "/healthz", "/readyz", "/metrics", "/%2e%2e/sse/"]),
)
QUERY = st.lists(
    st.tuples(st.sampled_from(["channel", "channel", "ticket", "Channel", "", "x"]) | ANY_TEXT, CHANNELS),
    max_size=40,
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        # Header values cannot start or end with whitespace on the wire.
        "Last-Event-ID": st.text(PRINTABLE, max_size=300).map(str.strip),
        "Cookie": st.text(PRINTABLE, max_size=60).map(lambda t: f"sse_ticket={t}".strip()),
        "X-Forwarded-For": st.text(PRINTABLE, max_size=60).map(str.strip),
        "Accept": st.sampled_from(["text/event-stream", "*/*", "application/json"]),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, query=QUERY, headers=HEADERS)
def test_random_requests_get_a_client_error_or_a_stream_never_a_server_error(
    sse_service: SseService, path: str, query: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    url = sse_service.url + path + ("?" + urlencode(query) if query else "")
    with (
        httpx.Client(timeout=httpx.Timeout(5, read=5)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        status = response.status_code
        body = next(response.iter_raw(), b"") if status == 200 else response.read()
    assert 200 <= status < 500, (status, url, headers, body[:200])
    assert body, (status, url)
    if status == 200 and path.startswith("/sse"):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert body.startswith(b"retry: ")


async def test_the_service_still_serves_a_normal_client_after_the_fuzzing(
    sse_service: SseService, redis_client: redis.Redis, channel: str
) -> None:
    """Runs after the property test (same module, file order), against the same process."""
    async with open_stream(f"{sse_service.url}/sse/{channel}") as stream:
        event_id = publish(redis_client, channel, '"after the storm"')
        (event,) = await stream.wait_for_events(1)
    assert event.id == f"{channel}/{event_id}"
    async with httpx.AsyncClient(base_url=sse_service.url, timeout=3) as client:
        assert (await client.get("/readyz")).status_code == 200
    await asyncio.sleep(0)
    assert sse_service.process is not None and sse_service.process.running
    assert "Traceback" not in sse_service.process.log_tail(2000)
