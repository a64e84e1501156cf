"""A logged-out session's tickets on a Redis Cluster: the mark and the ticket on different nodes.

Run alone with `pytest -m cluster`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack
from tests.conftest import TEST_SSE_ENV

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(
        tmp_path_factory.mktemp("revocation-cluster"), sse_env=TEST_SSE_ENV, redis_cluster=True
    ).start()
    yield started
    started.stop()


async def test_a_ticket_stored_after_its_sessions_logout_is_refused_on_a_cluster(stack: Stack) -> None:
    """What a ticket request authenticated before logout leaves when its write lands after the
    revocation: a ticket of an ended session. The service must refuse it there too."""
    late_write = (
        "from django.contrib.auth import get_user_model\n"
        "from django_sse_push.tickets import end_session, issue_ticket\n"
        "alice = get_user_model().objects.get(username='alice')\n"
        "end_session('ended-session-key')\n"
        "ended = issue_ticket(alice, [f'user.{alice.pk}'], session_key='ended-session-key')\n"
        "live = issue_ticket(alice, [f'user.{alice.pk}'], session_key='live-session-key')\n"
        "print(alice.pk, ended.token, live.token)\n"
    )
    pk, ended, live = stack.django.manage("shell", "-v", "0", "-c", late_write).stdout.split()
    url = f"{stack.nginx.url}/sse/user.{pk}"
    async with httpx.AsyncClient(timeout=5) as client:
        refused = await client.get(url, params={"ticket": ended})
        async with client.stream("GET", url, params={"ticket": live}) as opened:
            status = opened.status_code
    assert (refused.status_code, refused.text) == (401, "ticket revoked: its session logged out\n")
    assert status == 200
