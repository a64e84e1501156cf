"""Posting to the demo's board as a logged-in user would, and reading the board's events back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from devstack.processes import free_port
from devstack.services import REPO
from devstack.stack import Stack
from tests.support.site import alog_in
from tests.support.sse import Event, Followed, follow

BOARD_CHANNEL = "public.board"


@asynccontextmanager
async def board_author(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """alice, logged in through the login form."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await alog_in(client, "alice", "sse-demo")
        yield client


async def post_to_board(client: httpx.AsyncClient, text: str) -> int:
    """Posts through the board's form as board.js does; returns the HTTP status."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}
    return (await client.post("/board/", data={"text": text}, headers=headers)).status_code


def texts(events: list[Event], marker: str) -> list[str]:
    """The texts of the board items among `events` that contain `marker`, in arrival order."""
    items = [json.loads(e.data) for e in events if e.event == "board.item"]
    return [item["text"] for item in items if marker in item["text"]]


def received(marker: str, count: int) -> Callable[[list[Event]], bool]:
    return lambda events: len(texts(events, marker)) >= count


def queue_in_outbox(stack: Stack, events: dict[str, int]) -> None:
    """Commits `events[channel]` events (0, 1, ...) per channel while Redis is out of the site's reach,
    so they wait in the outbox for a relay: what an outage leaves behind."""
    code = (
        "from django.db import transaction\n"
        "from django_sse_push.publish import publish_on_commit\n"
        f"for channel, count in {events!r}.items():\n"
        "    with transaction.atomic():\n"
        "        for n in range(count):\n"
        "            publish_on_commit(channel, n)\n"
    )
    unreachable = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_CLUSTER_NODES": ""}
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=REPO / "django_site",
        env={**os.environ, **stack.django.env, **unreachable},
        check=True,
        capture_output=True,
        timeout=120,
    )


async def following(
    url: str, done: Callable[[list[Event]], bool], timeout: float = 60
) -> asyncio.Task[Followed]:
    """A browser's EventSource on `url` (tests.support.sse.follow) in a task, once its stream is open."""
    followed = Followed()
    task = asyncio.create_task(follow(url, done, timeout, followed=followed))
    async with asyncio.timeout(10):
        while not followed.connections:
            await asyncio.sleep(0.01)
    return task
