from __future__ import annotations

import pytest

from sse_service.protocol import (
    Envelope,
    EnvelopeError,
    RedisNames,
    encode_frame,
    encode_preamble,
    is_valid_channel,
    parse_envelope,
)


@pytest.mark.parametrize("name", ["a", "news", "user.42.notifications", "A-b_c.9", "x" * 128])
def test_valid_channel_names(name: str) -> None:
    assert is_valid_channel(name)


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a b", "a/b", "a{b}", "x" * 129, "é", "a\n"])
def test_invalid_channel_names(name: str) -> None:
    assert not is_valid_channel(name)


def test_redis_names_use_a_hash_tag_and_round_trip() -> None:
    names = RedisNames("myapp")
    assert names.pubsub_channel("news") == b"myapp:{news}"
    assert names.stream_key("news") == "myapp:{news}:events"
    assert names.channel_of(b"myapp:{news}") == "news"


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


def test_preamble_tells_the_browser_when_to_retry() -> None:
    assert encode_preamble(2500) == b"retry: 2500\n: connected\n\n"
