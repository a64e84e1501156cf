"""HTML fragments for htmx: `publish(..., as_text=True)`, `publish_fragment` and `{% htmx_stream %}`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django
import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.template import Context, Template, TemplateDoesNotExist
from django.test import RequestFactory
from pytest_django.fixtures import Settings

from devstack.services import SseService
from django_sse_push import keys
from django_sse_push.exceptions import PayloadNotSerializableError, PayloadTooLargeError
from django_sse_push.htmx import publish_fragment
from django_sse_push.positions import channel_list_tag, event_id
from django_sse_push.publish import publish
from sse_service.app import MAX_REQUEST_TARGET
from sse_service.protocol import channel_list_tag as sse_channel_list_tag
from sse_service.protocol import parse_positions, parse_stream_id
from tests.package import readme
from tests.support.sse import open_stream

FRAGMENT = '<li class="{{ kind }}">\n  {{ text }}\r\n  {% csrf_token %}{{ user }}</li>\n'


@pytest.fixture
def fragment_template(settings: Settings, tmp_path: Path) -> str:
    (tmp_path / "item.html").write_text(FRAGMENT)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    return "item.html"


@pytest.fixture
def page_template(settings: Settings, tmp_path: Path) -> str:
    """A page whose list item is a partial, the way a board renders its items."""
    (tmp_path / "board.html").write_text(
        '{% partialdef item %}<li class="{{ kind }}">{{ text }}</li>{% endpartialdef %}'
        "<ul>{% for text in items %}{% partial item %}{% endfor %}</ul>\n"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    return "board.html"


def _stream(client: redis.Redis, prefix: str, channel: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(keys.stream_key(prefix, channel))]


def test_as_text_sends_the_str_as_it_is(redis_client: redis.Redis, key_prefix: str) -> None:
    publish("public.html", '<p class="x">"quoted" é</p>', event="item", as_text=True)
    assert _stream(redis_client, key_prefix, "public.html") == [
        {b"event": b"item", b"data": '<p class="x">"quoted" é</p>'.encode()}
    ]


@pytest.mark.parametrize("data", ["", b"<p>bytes</p>", {"html": "<p>"}, None, "\ud800"])
def test_as_text_refuses_what_is_not_a_non_empty_str(data: object) -> None:
    with pytest.raises(PayloadNotSerializableError, match="cannot be serialised to text"):
        publish("public.html", data, as_text=True)


def test_as_text_has_the_same_size_limit(settings: Settings) -> None:
    settings.SSE_MAX_PAYLOAD_BYTES = 10
    with pytest.raises(PayloadTooLargeError, match="11 bytes as UTF-8 text"):
        publish("public.html", "<p>é123456", as_text=True)


def test_a_fragment_is_rendered_for_everyone_alike_and_published_as_text(
    redis_client: redis.Redis, key_prefix: str, fragment_template: str
) -> None:
    """No request: a CSRF token or the publishing user must not reach other people's pages."""
    event_id = publish_fragment(
        "public.html", fragment_template, {"kind": "new", "text": "<b>hi</b>"}, event="item", on_commit=False
    )
    assert event_id is not None
    (entry,) = _stream(redis_client, key_prefix, "public.html")
    assert entry == {b"event": b"item", b"data": b'<li class="new">\n  &lt;b&gt;hi&lt;/b&gt;\n  </li>'}


@pytest.mark.django_db(transaction=True)
def test_a_fragment_goes_out_on_commit_and_not_on_rollback(
    redis_client: redis.Redis, key_prefix: str, fragment_template: str
) -> None:
    with transaction.atomic():
        assert publish_fragment("public.html", fragment_template, {"text": "kept"}, event="item") is None
        assert _stream(redis_client, key_prefix, "public.html") == []
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_fragment("public.html", fragment_template, {"text": "rolled back"}, event="item")
        raise RuntimeError
    (entry,) = _stream(redis_client, key_prefix, "public.html")
    assert b"kept" in entry[b"data"]


@pytest.mark.skipif(django.VERSION < (6, 0), reason="partials are Django 6's: make matrix's django6 leg")
def test_a_partial_of_the_page_template_is_published_as_the_fragment(
    redis_client: redis.Redis, key_prefix: str, page_template: str
) -> None:
    publish_fragment(
        "public.html",
        f"{page_template}#item",
        {"kind": "new", "text": "<b>hi</b>"},
        event="item",
        on_commit=False,
    )
    (entry,) = _stream(redis_client, key_prefix, "public.html")
    assert entry == {b"event": b"item", b"data": b'<li class="new">&lt;b&gt;hi&lt;/b&gt;</li>'}


@pytest.mark.skipif(django.VERSION >= (6, 0), reason="before Django 6 only: partials render there")
def test_a_partial_before_django_6_is_refused_naming_the_version(
    redis_client: redis.Redis, key_prefix: str, page_template: str
) -> None:
    with pytest.raises(TemplateDoesNotExist, match=r"template partial, which needs Django 6\.0 or later"):
        publish_fragment("public.html", f"{page_template}#item", {"text": "x"}, event="item", on_commit=False)
    assert _stream(redis_client, key_prefix, "public.html") == []


async def test_a_multi_line_fragment_is_one_data_line_per_line_on_the_wire(
    settings: Settings, sse_service: SseService, fragment_template: str
) -> None:
    """What htmx's extension gets is the EventSource's data: the lines joined with "\\n"."""
    settings.SSE_KEY_PREFIX = "sse"  # the service's
    async with open_stream(f"{sse_service.url}/sse/public.html-wire") as stream:
        publish_fragment(
            "public.html-wire", fragment_template, {"kind": "a", "text": "b"}, event="item", on_commit=False
        )
        (event,) = await stream.wait_for_events(1)
    assert b'data: <li class="a">\ndata:   b\ndata:   </li>\n\n' in bytes(stream.raw)
    assert event.data == '<li class="a">\n  b\n  </li>'


def render(source: str, user: Any, context: dict[str, Any] | None = None) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load sse_push %}" + source).render(Context({"request": request, **(context or {})}))


def _connect_url(html: str) -> dict[str, list[str]]:
    match = re.search(r'data-sse-push-connect="([^"]*)"', html)
    assert match, html
    url = urlsplit(match.group(1).replace("&amp;", "&"))
    assert url.path == "/sse/"
    return parse_qs(url.query)


def test_htmx_stream_wraps_the_block_for_the_sse_extension(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    newest = publish("public.board.html", "<li>old</li>", as_text=True)
    block = '<ol sse-swap="item"><li>x</li></ol>'
    html = render(
        f'{{% htmx_stream "public.board.html" missing %}}{block}{{% endhtmx_stream %}}', AnonymousUser()
    )
    assert html.startswith('<div hx-ext="sse" data-sse-push-connect="')
    assert (
        '><ol sse-swap="item"><li>x</li></ol></div><script src="/static/sse_push/htmx-stream.js"></script>'
        in html
    )
    assert _connect_url(html) == {
        "channel": ["public.board.html"],
        "lastEventId": [f"public.board.html/{newest}"],
    }
    assert "ticket-url" not in html


@pytest.mark.django_db
def test_htmx_stream_with_a_private_channel_carries_the_ticket_url_and_csrf_token() -> None:
    user = get_user_model().objects.create_user("htmx-user", password="x")
    html = render('{% htmx_stream "public.news" user=True %}<p sse-swap="n"></p>{% endhtmx_stream %}', user)
    assert _connect_url(html)["channel"] == ["public.news", f"user.{user.pk}.html"]
    assert 'data-sse-push-ticket-url="/live/ticket"' in html
    assert re.search(r'data-sse-push-csrf-token="[A-Za-z0-9]{32,}"', html)


def test_htmx_stream_escapes_what_it_puts_in_attributes() -> None:
    html = render("{% htmx_stream name %}{% endhtmx_stream %}", AnonymousUser(), {"name": 'public."><x'})
    assert '"><x' not in html
    assert _connect_url(html)["channel"] == ['public."><x']


@pytest.mark.django_db
def test_user_true_in_htmx_stream_subscribes_the_users_fragment_channel_not_the_json_one(
    redis_client: redis.Redis, key_prefix: str, fragment_template: str
) -> None:
    """The README's htmx section said fragments go to `user.<pk>.html`, while `{% htmx_stream ...
    user=True %}` subscribed `user.<pk>`, the JSON channel: a team following both saw raw JSON in
    the page. `user=True` now means the user's fragment channel, where `publish_fragment` sends, and
    the example in docs/client.md says so."""
    user = get_user_model().objects.create_user("fragment-user", password="x")
    html = render('{% htmx_stream "public.board.html" user=True %}{% endhtmx_stream %}', user)
    channels = _connect_url(html)["channel"]
    assert channels == ["public.board.html", f"user.{user.pk}.html"]
    assert f"user.{user.pk}" not in channels

    sent = publish_fragment(
        f"user.{user.pk}.html", fragment_template, {"text": "hi"}, event="n", on_commit=False
    )
    assert sent is not None
    position = _connect_url(
        render('{% htmx_stream "public.board.html" user=True %}{% endhtmx_stream %}', user)
    )["lastEventId"][0]
    assert parse_positions(position, channels)[f"user.{user.pk}.html"] == parse_stream_id(sent)

    section = readme.section(readme.HTMX)
    assert '{% htmx_stream "public.board.html" user=True %}' in section
    assert "`user=True` adds the logged-in user's fragment channel `user.<pk>.html`" in section


def test_an_htmx_page_with_32_long_channels_fits_a_request_line() -> None:
    """`{% htmx_stream %}` wrote its start positions in the first wire format, naming every channel
    again in `lastEventId`: 32 channels of 128 characters made a URL of over 8 KB, which nginx
    answers 414 on the page's first connection. It now writes the compact form, channels by index,
    and the service reads back exactly the positions the page meant."""
    names = [f"public.{n:02d}." + "x" * 118 for n in range(32)]
    newest = {name: publish(name, "<li>x</li>", as_text=True) for name in names[::2]}
    tags = " ".join(f'"{name}"' for name in names)
    html = render(f"{{% htmx_stream {tags} %}}{{% endhtmx_stream %}}", AnonymousUser())
    url = html.split('data-sse-push-connect="', 1)[1].split('"', 1)[0]
    assert len(url) < MAX_REQUEST_TARGET - 100
    position = _connect_url(html)["lastEventId"][0]
    expected = {name: parse_stream_id(newest.get(name, "0-0")) for name in names}
    assert parse_positions(position, names) == expected


@pytest.mark.parametrize("count", [1, 2, 5])
def test_the_sites_event_ids_read_back_as_the_service_reads_them(count: int) -> None:
    channels = [f"public.c{n}" for n in range(count)]
    positions = {channel: f"{1700000000000 + n}-{n}" for n, channel in enumerate(channels) if n != 1}
    assert parse_positions(event_id(channels, positions), channels) == {
        channel: parse_stream_id(position) for channel, position in positions.items()
    }
    assert channel_list_tag(channels) == sse_channel_list_tag(channels).decode()
