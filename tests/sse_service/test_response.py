"""The response driven as uvicorn drives it, with a hand-written `receive` and `send`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis
from starlette.types import Message

from devstack.processes import free_port
from devstack.services import RedisServer
from sse_service.gate import Admission
from sse_service.hub import Hub
from sse_service.limits import ConnectionLimits
from sse_service.redis_clients import SingleRedis
from sse_service.response import HubEventSourceResponse
from sse_service.revocation import Revocations
from sse_service.settings import Settings

STREAMS = 50


class Client:
    """One connection: what was sent to it, and a disconnect it can be told to send."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.gone = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages)


@pytest.fixture
async def hub(redis_server: RedisServer) -> AsyncIterator[Hub]:
    commands = aioredis.Redis.from_url(redis_server.url)
    yield Hub(Settings(retry_ms=100), commands, SingleRedis(f"redis://127.0.0.1:{free_port()}/0"))
    await commands.aclose()


async def no_tickets(digests: Sequence[str]) -> list[bool]:
    return [False] * len(digests)


def respond(hub: Hub, channel: str, client: Client) -> asyncio.Task[None]:
    """Runs a response in a task of its own, as the server runs each request."""
    admission = Admission(
        "203.0.113.7", None, ConnectionLimits(99, 99).acquire(None, "x"), Revocations("sse", no_tickets), 0
    )
    response = HubEventSourceResponse(hub, (channel,), Settings(retry_ms=100), admission)
    scope = {"type": "http", "method": "GET", "path": f"/sse/{channel}"}
    return asyncio.create_task(response(scope, client.receive, client.send))


async def test_a_stream_runs_in_its_request_task_alone_and_ends_when_the_hub_shuts_down(
    hub: Hub, channel: str
) -> None:
    tasks_before = len(asyncio.all_tasks())
    clients = [Client() for _ in range(STREAMS)]
    requests = [respond(hub, channel, client) for client in clients]
    await asyncio.sleep(0.05)
    hub.confirmed([f"sse:{{{channel}}}".encode()])
    async with asyncio.timeout(3):
        while not all(b": connected" in client.body for client in clients):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the channel's fill has finished
    assert len(asyncio.all_tasks()) - tasks_before == STREAMS
    hub.shutdown()
    async with asyncio.timeout(3):
        await asyncio.gather(*requests)
    for client in clients:
        assert client.body.endswith(b"retry: 100\n: reconnect\n\n")
        assert client.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_client_that_leaves_ends_its_request_without_a_farewell(hub: Hub, channel: str) -> None:
    client = Client()
    request = respond(hub, channel, client)
    await asyncio.sleep(0.05)
    hub.confirmed([f"sse:{{{channel}}}".encode()])
    async with asyncio.timeout(3):
        while b": connected" not in client.body:
            await asyncio.sleep(0.01)
    client.gone.set()
    async with asyncio.timeout(3):
        await request
    assert b"reconnect" not in client.body
    assert hub.stats.connections == 0


async def test_a_head_request_gives_its_connection_slot_back(hub: Hub, channel: str) -> None:
    """HEAD answers the headers without streaming; its slot must be free again at once, or a client
    repeating HEAD would use up its address's limit for good."""
    limits = ConnectionLimits(99, 1)
    admission = Admission("203.0.113.7", None, limits.acquire(None, "x"), Revocations("sse", no_tickets), 0)
    response = HubEventSourceResponse(hub, (channel,), Settings(), admission)
    client = Client()
    await response({"type": "http", "method": "HEAD", "path": f"/sse/{channel}"}, client.receive, client.send)
    assert client.messages[0]["type"] == "http.response.start"
    limits.acquire(None, "x")  # would raise Refused(429) if the slot were still held
