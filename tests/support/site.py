"""Acting as a browser on the Django site with httpx: log in through the login form, ask for tickets.

Works through nginx or against Django directly; the client's cookie jar keeps the session, the CSRF
cookie and the `sse_ticket` cookie (path /sse/) as a browser would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx

from tests.support.sse import EventStream

LOGIN_PATH = "/accounts/login/"
TICKET_PATH = "/live/ticket"
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LoginFailed(AssertionError):
    pass


def _login_form(page: httpx.Response, username: str, password: str) -> dict[str, str]:
    match = _CSRF_FIELD.search(page.text)
    if page.status_code != 200 or match is None:
        raise LoginFailed(f"no login form at {page.url}: HTTP {page.status_code}")
    return {"csrfmiddlewaretoken": match.group(1), "username": username, "password": password, "next": "/"}


def _check_logged_in(response: httpx.Response, username: str) -> None:
    # Django answers a good login with a redirect, a bad one with the form again.
    if response.status_code != 302:
        raise LoginFailed(f"login as {username} failed: HTTP {response.status_code}")


def log_in(client: httpx.Client, username: str, password: str) -> None:
    form = _login_form(client.get(LOGIN_PATH), username, password)
    _check_logged_in(client.post(LOGIN_PATH, data=form), username)


async def alog_in(client: httpx.AsyncClient, username: str, password: str) -> None:
    form = _login_form(await client.get(LOGIN_PATH), username, password)
    _check_logged_in(await client.post(LOGIN_PATH, data=form), username)


def _csrf_headers(client: httpx.Client | httpx.AsyncClient) -> dict[str, str]:
    token = client.cookies.get("csrftoken")
    assert token, "no CSRF cookie yet: load a page (or log in) first"
    return {"X-CSRFToken": token, "Accept": "application/json"}


async def arequest_ticket(client: httpx.AsyncClient, channels: Sequence[str]) -> httpx.Response:
    """POST /live/ticket as demo.js does; the answer's cookie lands in the client's jar."""
    if "csrftoken" not in client.cookies:
        await client.get(LOGIN_PATH)
    return await client.post(TICKET_PATH, data={"channel": list(channels)}, headers=_csrf_headers(client))


async def alog_out(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/accounts/logout/", headers=_csrf_headers(client))


@asynccontextmanager
async def astream(client: httpx.AsyncClient, path: str, timeout: float = 5.0) -> AsyncIterator[EventStream]:
    """Like tests.support.sse.open_stream, but through `client`, so its cookies go along."""
    async with client.stream("GET", path, timeout=httpx.Timeout(timeout, read=None)) as response:
        stream = EventStream(response)
        if response.status_code == 200:
            await stream.wait_for_comment("connected", timeout)
        yield stream
