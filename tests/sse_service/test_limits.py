"""Which address a connection counts against, and the counters themselves."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from sse_service.exceptions import Refused
from sse_service.limits import ChannelRefused, ChannelRoom, ConnectionLimits, RoomRefusal, client_address
from sse_service.policies import default_table

LOOPBACK = (ip_network("127.0.0.1"), ip_network("::1"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", LOOPBACK, "203.0.113.7"),
        ("::1", "2001:db8::1", LOOPBACK, "2001:db8::1"),
        ("10.1.2.3", "203.0.113.7", (ip_network("10.0.0.0/8"),), "203.0.113.7"),
        # The proxy's own entry is the last one; what the client sent before it is not believed.
        ("127.0.0.1", "6.6.6.6, 203.0.113.7", LOOPBACK, "203.0.113.7"),
        # Anyone else's X-Forwarded-For is ignored.
        ("198.51.100.9", "203.0.113.7", LOOPBACK, "198.51.100.9"),
        ("127.0.0.1", None, LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "not-an-address", LOOPBACK, "127.0.0.1"),
        # One client is one key however its proxy writes the address.
        ("127.0.0.1", "2001:DB8:0:0:0:0:0:1", LOOPBACK, "2001:db8::1"),
        ("127.0.0.1", "203.0.113.07", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "fe80::1%eth0", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "", LOOPBACK, "127.0.0.1"),
        # A Unix-socket peer is local, like loopback.
        (None, "203.0.113.7", LOOPBACK, "203.0.113.7"),
        (None, None, LOOPBACK, "unix"),
    ],
)
def test_client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted: tuple[IPv4Network | IPv6Network, ...],
    expected: str,
) -> None:
    assert client_address(peer, forwarded_for, trusted) == expected


def test_per_holder_limit_is_a_429_and_a_released_slot_is_free_again() -> None:
    limits = ConnectionLimits(per_holder=2, per_address=100)
    first = limits.acquire("user:1", "a")
    limits.acquire("user:1", "b")
    with pytest.raises(Refused) as refused:
        limits.acquire("user:1", "c")
    assert refused.value.status == 429
    assert "at most 2" in refused.value.message
    limits.acquire("user:2", "c")
    first.release()
    first.release()  # twice is harmless: the slot is freed once
    limits.acquire("user:1", "c")
    with pytest.raises(Refused):
        limits.acquire("user:1", "d")


def test_per_address_limit_counts_anonymous_and_ticketed_alike() -> None:
    limits = ConnectionLimits(per_holder=100, per_address=2)
    limits.acquire(None, "203.0.113.7")
    slot = limits.acquire("user:1", "203.0.113.7")
    with pytest.raises(Refused) as refused:
        limits.acquire(None, "203.0.113.7")
    assert refused.value.message == "Too many connections from 203.0.113.7: at most 2 at a time\n"
    limits.acquire(None, "203.0.113.8")
    slot.release()
    limits.acquire("user:2", "203.0.113.7")


def test_a_refused_request_takes_no_slot() -> None:
    limits = ConnectionLimits(per_holder=1, per_address=1)
    limits.acquire("user:1", "x")
    with pytest.raises(Refused):
        limits.acquire("user:1", "y")
    # "y" was not counted by the refused attempt.
    limits.acquire("user:2", "y")


class Served:
    def __init__(self, *channels: str) -> None:
        self.channels = set(channels)

    @property
    def channel_count(self) -> int:
        return len(self.channels)

    def serves(self, channel: str) -> bool:
        return channel in self.channels


def test_the_process_wide_channel_cap_counts_only_new_channels() -> None:
    room = ChannelRoom(2, 0, default_table(["public."]))
    room.check(["public.a", "public.b"], Served("public.a"))
    room.check(["public.a", "public.b"], Served("public.a", "public.b"))
    with pytest.raises(ChannelRefused) as refused:
        room.check(["public.c"], Served("public.a", "public.b"))
    assert (refused.value.status, refused.value.reason) == (503, RoomRefusal.PROCESS_FULL)


def test_the_reserve_is_for_streams_adding_only_private_channels() -> None:
    room = ChannelRoom(4, 2, default_table(["public."]))
    served = Served("public.a", "public.b")
    with pytest.raises(ChannelRefused) as refused:
        room.check(["public.c"], served)
    assert refused.value.reason is RoomRefusal.PUBLIC_FULL
    assert refused.value.message == "Too many public channels on this server: at most 2; retry later\n"
    with pytest.raises(ChannelRefused):
        room.check(["user.7", "public.c"], served)
    room.check(["user.7", "public.a"], served)
    room.check(["user.7", "user.8"], served)
    with pytest.raises(ChannelRefused) as refused:
        room.check(["user.7", "user.8", "user.9"], served)
    assert refused.value.reason is RoomRefusal.PROCESS_FULL
