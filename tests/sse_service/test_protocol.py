from __future__ import annotations

import pytest

from sse_service.protocol import (
    Envelope,
    EnvelopeError,
    PositionError,
    RedisNames,
    encode_frame,
    encode_opening,
    format_positions,
    is_valid_channel,
    parse_envelope,
    parse_positions,
)


@pytest.mark.parametrize("name", ["a", "news", "user.42.notifications", "A-b_c.9", "x" * 128])
def test_valid_channel_names(name: str) -> None:
    assert is_valid_channel(name)


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a b", "a/b", "a{b}", "x" * 129, "é", "a\n"])
def test_invalid_channel_names(name: str) -> None:
    assert not is_valid_channel(name)


def test_redis_names_use_a_hash_tag() -> None:
    names = RedisNames("myapp")
    assert names.pubsub_channel("news") == b"myapp:{news}"
    assert names.stream_key("news") == "myapp:{news}:events"
    assert names.control_channel() == b"myapp:control"
    assert names.ticket_key("ab12") == "myapp:ticket:ab12"


def test_envelope_data_is_everything_after_the_third_line() -> None:
    envelope = parse_envelope(b'v1\n17-3\nupdate\n{"a":"x\ny"}\n')
    assert envelope == Envelope(b"17-3", b"update", b'{"a":"x\ny"}\n')


@pytest.mark.parametrize("raw", [b"", b"garbage", b"v2\n1-0\n\n{}", b"v1\n1-0\n{}", b"v1\n\n\n{}"])
def test_malformed_envelopes_are_rejected(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(raw)


def test_default_event_type_has_no_event_line() -> None:
    assert encode_frame("news", Envelope(b"5-0", b"", b'{"a":1}')) == b'id: news/5-0\ndata: {"a":1}\n\n'


def test_named_event_type_is_on_the_wire() -> None:
    frame = encode_frame("news", Envelope(b"5-1", b"update", b"1"))
    assert frame == b"id: news/5-1\nevent: update\ndata: 1\n\n"


def test_every_kind_of_line_break_starts_a_new_data_line() -> None:
    frame = encode_frame("c", Envelope(b"1-0", b"", b"a\nb\r\nc\rd"))
    assert frame == b"id: c/1-0\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_empty_data_still_makes_a_frame() -> None:
    assert encode_frame("c", Envelope(b"1-0", b"", b"")) == b"id: c/1-0\ndata: \n\n"


def test_the_opening_tells_the_browser_when_to_retry() -> None:
    assert encode_opening(2500, {}) == b"retry: 2500\n: connected\n\n"


def test_the_opening_id_carries_every_channels_start_without_data() -> None:
    opening = encode_opening(100, {"news": (5, 1), "user.7": (0, 0)})
    assert opening == b"retry: 100\nid: news/5-1,user.7/0-0\n: connected\n\n"
    assert parse_positions("news/5-1,user.7/0-0") == {"news": (5, 1), "user.7": (0, 0)}


def test_an_event_id_names_its_own_channel_first_then_the_connections_others() -> None:
    assert parse_positions("news/1700000000000-0") == {"news": (1700000000000, 0)}
    assert parse_positions("news/5-1,user.7/3-0") == {"news": (5, 1), "user.7": (3, 0)}


def test_positions_round_trip_through_the_id_suffix() -> None:
    positions = {"user.7": (3, 0), "public.board": (1700000000000, 12)}
    assert parse_positions("news/5-1" + format_positions(positions).decode()) == {"news": (5, 1), **positions}


@pytest.mark.parametrize(
    "last_event_id",
    ["", "news", "news/", "/1-0", "news/1-0,", "news/1-0,,x/2-0", "news/1", "bad name/1-0", "news/1-0;x/2-0"],
)
def test_malformed_event_ids_are_refused(last_event_id: str) -> None:
    with pytest.raises(PositionError):
        parse_positions(last_event_id)


def test_an_id_with_too_many_positions_is_refused_before_parsing_them_all() -> None:
    with pytest.raises(PositionError, match="more than 256"):
        parse_positions(",".join(f"c{n}/1-0" for n in range(300)))
