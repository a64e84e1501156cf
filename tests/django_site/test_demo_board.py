"""The activity board: saved items, notifications and admin broadcasts reach Redis on commit."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client

from demo.models import BoardItem, Notification
from django_sse_push import keys

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


def test_presence_answers_the_board_listener_count() -> None:
    assert Client().get("/board/presence").json() == {"channel": "public.board", "listeners": 0}
