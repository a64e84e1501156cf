"""The activity board: saved items, notifications and admin broadcasts reach Redis on commit."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from pytest_django.fixtures import Settings

from demo.models import BoardItem, Notification
from devstack.processes import free_port
from django_sse_push import keys
from django_sse_push.models import OutboxEvent
from django_sse_push.outbox import send_pending
from tests.django_site.conftest import RedisAway

pytestmark = pytest.mark.django_db(transaction=True)


def events(redis_client: redis.Redis, prefix: str, channel: str) -> list[tuple[str, Any]]:
    entries = redis_client.xrange(keys.stream_key(prefix, channel))
    return [(fields[b"event"].decode(), json.loads(fields[b"data"])) for _, fields in entries]


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="pw", is_staff=True, is_superuser=True)


@pytest.fixture
def bob() -> Any:
    return get_user_model().objects.create_user("bob", password="pw")


def test_posting_an_item_publishes_it_to_the_board(
    alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    client = Client()
    client.force_login(alice)
    answer = client.post("/board/", {"text": "hello board"}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    [(event, data)] = events(redis_client, key_prefix, "public.board")
    assert event == "board.item"
    assert data["text"] == "hello board" and data["author"] == "alice" and data["id"] == answer.json()["id"]


def test_a_mention_notifies_only_that_user(
    alice: Any, bob: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    BoardItem.objects.create(author=alice, text="look @bob")
    [(event, data)] = events(redis_client, key_prefix, f"user.{bob.pk}")
    assert event == "notification" and data["text"] == "alice mentioned you: look @bob"
    assert events(redis_client, key_prefix, f"user.{alice.pk}") == []
    assert Notification.objects.get().recipient == bob


def test_anonymous_visitors_see_the_board_but_cannot_post(alice: Any) -> None:
    BoardItem.objects.create(author=alice, text="visible to all")
    client = Client()
    page = client.get("/board/")
    assert page.status_code == 200 and b"visible to all" in page.content
    assert b'id="live-stream"' in page.content
    assert client.post("/board/", {"text": "no"}).status_code == 403


def test_the_admin_action_broadcasts_an_announcement(
    alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    item = BoardItem.objects.create(author=alice, text="maintenance at noon")
    client = Client()
    client.force_login(alice)
    answer = client.post(
        "/admin/demo/boarditem/", {"action": "broadcast", "_selected_action": [str(item.pk)]}
    )
    assert answer.status_code == 302
    [(event, data)] = events(redis_client, key_prefix, "public.announcements")
    assert event == "announcement" and data == {"text": "maintenance at noon", "by": "alice"}


def test_presence_answers_the_board_listener_count_and_viewers() -> None:
    expected = {"channel": "public.board", "listeners": 0, "viewers": []}
    assert Client().get("/board/presence").json() == expected


def test_posting_while_redis_is_down_saves_the_item_and_its_events_for_later(
    alice: Any, bob: Any, redis_client: redis.Redis, key_prefix: str, redis_away: RedisAway
) -> None:
    """With Redis stopped, every post answered 500 although the item was saved; the board event was
    lost and the @mention's notification never created, as the error escaped the post_save receiver."""
    with redis_away():
        client = Client()
        client.force_login(alice)

        answer = client.post("/board/", {"text": "still here @bob"}, HTTP_ACCEPT="application/json")

        assert answer.status_code == 200
        assert Notification.objects.get().recipient == bob
    # Each as JSON for live.js and as an HTML fragment for the htmx board.
    assert send_pending(using="default", limit=10).sent == 4
    [(_, item)] = events(redis_client, key_prefix, "public.board")
    [(_, note)] = events(redis_client, key_prefix, f"user.{bob.pk}")
    assert item["text"] == "still here @bob" and note["text"] == "alice mentioned you: still here @bob"


def test_board_presence_and_posting_answer_when_the_redis_cluster_is_unreachable(
    alice: Any, settings: Settings
) -> None:
    """On a Redis Cluster, /board/ and /board/presence answered 500 when no node answered: redis-py's
    RedisClusterException is not a redis.RedisError, which is all the page caught."""
    settings.SSE_REDIS_CLUSTER_NODES = [f"127.0.0.1:{free_port()}"]
    client = Client()
    client.force_login(alice)

    page = client.get("/board/")
    presence = client.get("/board/presence")
    post = client.post("/board/", {"text": "cluster down"}, HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and b'<strong id="listener-count">?</strong>' in page.content
    assert presence.status_code == 200 and presence.json()["listeners"] is None
    assert post.status_code == 200 and BoardItem.objects.get().text == "cluster down"
    assert [row.channel for row in OutboxEvent.objects.all()] == ["public.board", "public.board.html"]


def test_the_admin_broadcast_succeeds_while_redis_is_down(
    alice: Any, settings: Settings, unreachable_redis_url: str
) -> None:
    item = BoardItem.objects.create(author=alice, text="maintenance at noon")
    settings.SSE_REDIS_URL = unreachable_redis_url
    client = Client()
    client.force_login(alice)

    answer = client.post(
        "/admin/demo/boarditem/", {"action": "broadcast", "_selected_action": [str(item.pk)]}
    )

    assert answer.status_code == 302
    assert [row.channel for row in OutboxEvent.objects.all()] == ["public.announcements"]


def test_a_ticket_asked_for_while_the_redis_cluster_is_unreachable_is_a_503_to_retry(
    alice: Any, settings: Settings
) -> None:
    """Not a 500: live.js gives up on a 4xx but retries a 503 with backoff."""
    settings.SSE_REDIS_CLUSTER_NODES = [f"127.0.0.1:{free_port()}"]
    client = Client()
    client.force_login(alice)

    answer = client.post("/live/ticket", {"channel": f"user.{alice.pk}"})

    assert answer.status_code == 503
    assert answer.json() == {"error": "tickets are unavailable right now; retry later"}


# The htmx board: each saved item and notification also goes out as an HTML fragment, on its own channel.


def fragments(redis_client: redis.Redis, prefix: str, channel: str) -> list[tuple[str, str]]:
    entries = redis_client.xrange(keys.stream_key(prefix, channel))
    return [(fields[b"event"].decode(), fields[b"data"].decode()) for _, fields in entries]


def test_an_htmx_post_saves_the_item_and_publishes_its_fragment(
    client: Client, alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    client.force_login(alice)
    # htmx swaps nothing in: the item comes back over the stream.
    assert client.post("/board/", {"text": "<hello> htmx"}, HTTP_HX_REQUEST="true").status_code == 204
    item = BoardItem.objects.get()
    [(event, html)] = fragments(redis_client, key_prefix, "public.board.html")
    assert event == "board.item"
    assert html.startswith(f'<li data-id="{item.pk}" class="fresh"><span class="author">alice</span>')
    assert '<span class="text">&lt;hello&gt; htmx</span>' in html


def test_a_mention_sends_a_fragment_on_the_users_private_fragment_channel(
    alice: Any, bob: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    BoardItem.objects.create(author=alice, text="look @bob")
    [(event, html)] = fragments(redis_client, key_prefix, f"user.{bob.pk}.html")
    assert event == "notification"
    assert html.endswith(">alice mentioned you: look @bob</li>")
    assert fragments(redis_client, key_prefix, f"user.{alice.pk}.html") == []


def test_the_htmx_page_streams_the_fragment_channels_of_its_visitor(alice: Any, bob: Any) -> None:
    BoardItem.objects.create(author=alice, text="already there")
    anonymous = Client().get("/board/htmx/")
    assert anonymous.status_code == 200
    assert b"already there" in anonymous.content
    assert b"channel=public.board.html&amp;lastEventId=" in anonymous.content
    assert b"data-sse-push-ticket-url" not in anonymous.content

    client = Client()
    client.force_login(bob)
    page = client.get("/board/htmx/").content.decode()
    assert f"channel=public.board.html&amp;channel=user.{bob.pk}.html&amp;" in page
    assert 'data-sse-push-ticket-url="/live/ticket"' in page
    assert '<script src="/static/demo/vendor/htmx-2.0.11.min.js"></script>' in page


def test_the_vendored_htmx_files_are_the_pinned_packages_unmodified() -> None:
    """Each file names its npm package and version, its licence, and the sha256 of the file as the
    package ships it; what follows the header must still hash to that."""
    vendor = Path(__file__).resolve().parents[2] / "django_site" / "demo" / "static" / "demo" / "vendor"
    files = sorted(vendor.glob("*.js"))
    assert [f.name for f in files] == ["htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.js"]
    for path in files:
        header, _, body = path.read_bytes().partition(b" */\n")
        match = re.search(
            rb"^/\*! (\S+) (\d+\.\d+\.\d+), .*\n \* sha256 of the original file: (\w{64})", header
        )
        assert match, path.name
        package, version, digest = (group.decode() for group in match.groups())
        assert version in path.name and package.removesuffix(".org") in path.name
        assert b"Licence:" in header and b"Permission to use, copy, modify" in header
        assert hashlib.sha256(body).hexdigest() == digest, path.name
