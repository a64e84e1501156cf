"""The htmx board: each saved item and notification also goes out as an HTML fragment, on its own channel."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client

from demo.models import BoardItem
from django_sse_push import keys

pytestmark = pytest.mark.django_db(transaction=True)


def fragments(redis_client: redis.Redis, prefix: str, channel: str) -> list[tuple[str, str]]:
    entries = redis_client.xrange(keys.stream_key(prefix, channel))
    return [(fields[b"event"].decode(), fields[b"data"].decode()) for _, fields in entries]


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob() -> Any:
    return get_user_model().objects.create_user("bob", password="pw")


def test_an_htmx_post_saves_the_item_and_publishes_its_fragment(
    alice: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    client = Client()
    client.force_login(alice)
    answer = client.post("/board/", {"text": "<hello> htmx"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 204  # htmx swaps nothing: the item comes back over the stream
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
