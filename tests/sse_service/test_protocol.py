from __future__ import annotations

import pytest

from sse_service.protocol import (
    Envelope,
    EnvelopeError,
    PositionError,
    RedisNames,
    channel_list_tag,
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
    assert encode_opening(2500, ["news"], {}) == b"retry: 2500\n: connected\n\n"


def test_the_opening_carries_every_channels_start_with_data_under_the_services_own_type() -> None:
    """Regression: the opening block was `id:` alone, and clients that dispatch only blocks with data
    (npm eventsource 3) never took its id, so they resumed from the newest event after an early
    reconnect and lost what was published meanwhile."""
    opening = encode_opening(100, ["news", "user.7"], {"news": (5, 1), "user.7": (0, 0)})
    tag = channel_list_tag(["news", "user.7"]).decode()
    assert (
        opening
        == f"retry: 100\nid: news/5-1,~{tag},1:0-0\nevent: sse.start\ndata: {{}}\n: connected\n\n".encode()
    )
    assert parse_positions(f"news/5-1,~{tag},1:0-0", ["news", "user.7"]) == {"news": (5, 1), "user.7": (0, 0)}


def test_an_event_id_names_its_own_channel_first_then_the_others_by_index() -> None:
    channels = ["news", "user.7"]
    tag = channel_list_tag(channels).decode()
    assert parse_positions("news/1700000000000-0", channels) == {"news": (1700000000000, 0)}
    assert parse_positions(f"user.7/3-0,~{tag},0:5-1", channels) == {"news": (5, 1), "user.7": (3, 0)}


def test_ids_of_wire_contract_1_naming_every_channel_are_still_read() -> None:
    assert parse_positions("news/5-1,user.7/3-0", ["news", "user.7"]) == {"news": (5, 1), "user.7": (3, 0)}


def test_indexes_made_for_another_channel_list_are_ignored() -> None:
    tag = channel_list_tag(["news", "user.7"]).decode()
    assert parse_positions(f"news/5-1,~{tag},1:3-0", ["news", "user.8"]) == {"news": (5, 1)}


def test_positions_round_trip_through_the_id_suffix() -> None:
    channels = ["news", "user.7", "public.board"]
    tag = channel_list_tag(channels)
    positions = {"news": (5, 1), "user.7": (3, 0), "public.board": (1700000000000, 12)}
    last_event_id = "news/5-1" + format_positions(channels, tag, "news", positions).decode()
    assert parse_positions(last_event_id, channels) == positions


def test_the_id_of_32_channels_of_128_characters_stays_short() -> None:
    """Regression: the id named every channel, so at the documented maxima (32 channels of 128
    characters) live.js's reconnect URL was 8,795 characters and nginx answered 414."""
    channels = [f"{n:02d}" + "x" * 126 for n in range(32)]
    positions = {channel: (1700000000000 + n, n) for n, channel in enumerate(channels)}
    suffix = format_positions(channels, channel_list_tag(channels), channels[0], positions)
    assert len(channels[0]) + 20 + len(suffix) < 1000


@pytest.mark.parametrize(
    "last_event_id",
    [
        "",
        "news",
        "news/",
        "/1-0",
        "news/1-0,",
        "news/1-0,,x/2-0",
        "news/1",
        "bad name/1-0",
        "news/1-0;x/2-0",
        "news/1-0,~00000000,2:1-0",
        "news/1-0,~00000000,x:1-0",
        "news/1-0,~00000000,1/1-0",
    ],
)
def test_malformed_event_ids_are_refused(last_event_id: str) -> None:
    with pytest.raises(PositionError):
        parse_positions(last_event_id, ["news", "user.7"])


def test_an_id_with_too_many_positions_is_refused_before_parsing_them_all() -> None:
    with pytest.raises(PositionError, match="more than 256"):
        parse_positions(",".join(f"c{n}/1-0" for n in range(300)), ["c0"])
