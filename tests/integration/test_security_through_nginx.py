"""The access matrix through nginx, as browsers meet it: Django's login form and tickets, the SSE service.

Each test logs in its own fresh users (made once for the module), so revoking one never touches the
demo users other tests rely on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from devstack.stack import Stack
from devstack.tickets import ticket_key
from tests.integration.probes import scrape
from tests.support.site import alog_in, alog_out, arequest_ticket, astream
from tests.support.sse import open_stream

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Account:
    username: str
    pk: int

    @property
    def channel(self) -> str:
        return f"user.{self.pk}"


@pytest.fixture(scope="module")
def accounts(stack: Stack) -> tuple[Account, Account]:
    names = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"for name in {names!r}:\n"
        f"    print(get_user_model().objects.create_user(name, password={PASSWORD!r}).pk)\n"
    )
    pks = stack.django.manage("shell", "-v", "0", "-c", code).stdout.split()
    first, second = (Account(name, int(pk)) for name, pk in zip(names, pks, strict=True))
    return first, second


@pytest.fixture
async def browser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie jar on the site's one origin, as a browser tab has."""
    async with httpx.AsyncClient(base_url=stack.nginx.url, timeout=5) as client:
        yield client


async def test_anonymous_visitors_hear_public_channels_and_nothing_else(
    browser: httpx.AsyncClient, accounts: tuple[Account, Account], channel: str
) -> None:
    alice, _ = accounts
    async with astream(browser, f"/sse/{channel}") as public:
        assert public.response.status_code == 200
    private = await browser.get(f"/sse/?channel={channel}&channel={alice.channel}")
    assert (private.status_code, private.text) == (
        401,
        f"a ticket is required for private channel {alice.channel}\n",
    )
    refused = await arequest_ticket(browser, [alice.channel])
    assert refused.status_code == 403


async def test_a_user_hears_their_own_channel_with_the_ticket_cookie(
    stack: Stack, browser: httpx.AsyncClient, accounts: tuple[Account, Account], channel: str
) -> None:
    alice, _ = accounts
    await alog_in(browser, alice.username, PASSWORD)
    issued = await arequest_ticket(browser, [alice.channel, channel])
    assert issued.status_code == 200
    assert browser.cookies.get("sse_ticket", path="/sse/") == issued.json()["ticket"]

    async with astream(browser, f"/sse/?channel={alice.channel}&channel={channel}") as stream:
        event_id = stack.django.manage("publish", alice.channel, '{"for": "alice"}').stdout.strip()
        (event,) = await stream.wait_for_events(1)
    assert (event.channel, event.stream_id, json.loads(event.data)) == (
        alice.channel,
        event_id,
        {"for": "alice"},
    )


async def test_a_ticket_is_for_its_own_user_only(
    browser: httpx.AsyncClient, accounts: tuple[Account, Account]
) -> None:
    alice, bob = accounts
    await alog_in(browser, alice.username, PASSWORD)

    at_issue = await arequest_ticket(browser, [alice.channel, bob.channel])
    assert (at_issue.status_code, at_issue.json()["channels"]) == (403, [bob.channel])

    # A genuine ticket of alice's, which lists only alice's channel, presented for bob's.
    token = (await arequest_ticket(browser, [alice.channel])).json()["ticket"]
    by_cookie = await browser.get(f"/sse/{bob.channel}")
    async with httpx.AsyncClient(base_url=str(browser.base_url), timeout=5) as elsewhere:
        by_query = await elsewhere.get(f"/sse/{bob.channel}?ticket={token}")
    expected = (403, f"the ticket does not allow private channel {bob.channel}\n")
    assert (by_cookie.status_code, by_cookie.text) == expected
    assert (by_query.status_code, by_query.text) == expected


async def test_an_expired_ticket_is_a_401(
    stack: Stack, browser: httpx.AsyncClient, accounts: tuple[Account, Account]
) -> None:
    alice, _ = accounts
    await alog_in(browser, alice.username, PASSWORD)
    token = (await arequest_ticket(browser, [alice.channel])).json()["ticket"]
    with stack.redis.client() as redis_client:
        assert redis_client.pexpire(ticket_key(token), 1)
    await asyncio.sleep(0.05)

    response = await browser.get(f"/sse/{alice.channel}")

    assert (response.status_code, response.text) == (401, "ticket expired or unknown\n")


async def test_logging_out_ends_the_live_stream_and_the_ticket(
    stack: Stack, browser: httpx.AsyncClient, accounts: tuple[Account, Account], channel: str
) -> None:
    _, bob = accounts
    revoked_before = (await scrape(stack.sse))['sse_streams_ended_total{reason="revoked"}']
    await alog_in(browser, bob.username, PASSWORD)
    token = (await arequest_ticket(browser, [bob.channel])).json()["ticket"]

    async with (
        astream(browser, f"/sse/?channel={bob.channel}&channel={channel}") as live,
        open_stream(f"{stack.nginx.url}/sse/{channel}") as bystander,
    ):
        assert (await alog_out(browser)).status_code == 302
        await live.read_to_end(timeout=3)
        assert not bystander.ended

    reused_cookie = await browser.get(f"/sse/{bob.channel}")
    reused_query = await browser.get(f"/sse/{bob.channel}", params={"ticket": token})
    assert (reused_cookie.status_code, reused_cookie.text) == (401, "ticket expired or unknown\n")
    assert reused_query.status_code == 401
    assert (await arequest_ticket(browser, [bob.channel])).status_code == 403
    assert (await scrape(stack.sse))['sse_streams_ended_total{reason="revoked"}'] == revoked_before + 1


async def test_revoking_from_code_ends_the_stream_and_a_new_ticket_reopens_it(
    stack: Stack, browser: httpx.AsyncClient, accounts: tuple[Account, Account]
) -> None:
    """A permission change: Django code calls revoke_user_tickets; the session itself lives on."""
    alice, _ = accounts
    await alog_in(browser, alice.username, PASSWORD)
    await arequest_ticket(browser, [alice.channel])
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from django_sse_push.tickets import revoke_user_tickets\n"
        f"revoke_user_tickets(get_user_model().objects.get(pk={alice.pk}))\n"
    )
    async with astream(browser, f"/sse/{alice.channel}") as live:
        stack.django.manage("shell", "-v", "0", "-c", code)
        await live.read_to_end(timeout=3)
    assert (await browser.get(f"/sse/{alice.channel}")).status_code == 401
    assert (await arequest_ticket(browser, [alice.channel])).status_code == 200
    async with astream(browser, f"/sse/{alice.channel}") as again:
        assert again.response.status_code == 200


async def test_ticket_values_never_reach_nginx_logs(
    stack: Stack, browser: httpx.AsyncClient, accounts: tuple[Account, Account]
) -> None:
    alice, _ = accounts
    await alog_in(browser, alice.username, PASSWORD)
    token = (await arequest_ticket(browser, [alice.channel])).json()["ticket"]
    async with httpx.AsyncClient(base_url=stack.nginx.url, timeout=httpx.Timeout(5, read=None)) as other:
        async with astream(other, f"/sse/{alice.channel}?ticket={token}") as stream:
            assert stream.response.status_code == 200
        await other.get("/sse/public.x?ticket=SECRET-NOT-A-TICKET&channel=private.y")
    assert stack.nginx.process is not None
    log = stack.nginx.process.log_path.read_text()
    assert '"GET /sse/user.' in log
    assert token not in log
    assert "SECRET-NOT-A-TICKET" not in log


async def test_pages_carry_one_set_of_security_headers(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    refused = await browser.get("/sse/private.x")
    for response in (page, refused):
        assert response.headers.get_list("x-frame-options") == ["DENY"]
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert response.headers.get_list("referrer-policy") == ["same-origin"]
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
