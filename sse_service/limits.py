"""Connection limits per ticket holder and per client address, where the address comes from, and
the room a process has for channels.

The counters live in this process. With N uvicorn workers or containers a client may hold up to N
times each limit; nginx spreads connections over them, so the limits still bound what one client
costs each process.

Channels: a process serves at most `SSE_MAX_CHANNELS_PER_PROCESS`, and the last
`SSE_RESERVED_PRIVATE_CHANNELS` of them only to streams whose new channels are all private. Public
names cost nothing to invent (no ticket), so anyone can open streams on made-up ones until the cap
is reached; private channels are opened only with a ticket Django issued, so their number is
bounded by Django's decisions. The reserve keeps room for those whatever public names others
invent. A budget per client would not: addresses are cheap (an IPv6 /64 holds billions), and the
per-address limit already times `SSE_MAX_CHANNELS_PER_CONNECTION` is thousands of channels. Nor
would a list of allowed public names: sites make public channels up as they go (one per board, per
article).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import Enum
from ipaddress import IPv4Network, IPv6Network, ip_address
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Protocol

from .exceptions import Refused
from .policies import PolicyTable


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPv4Network | IPv6Network]
) -> str:
    """The client's address: the peer's, or the one a trusted proxy put last in X-Forwarded-For.

    A peer without an IP address is a Unix socket, so a local process like a loopback peer, and is
    trusted as such. Anything a trusted proxy sends that is not an address is ignored.
    """
    if not forwarded_for:
        return peer or "unix"
    if peer is not None:
        try:
            peer_ip = ip_address(peer)
        except ValueError:
            return peer
        if not any(peer_ip in network for network in trusted):
            return peer
    return _canonical_address(forwarded_for.rsplit(",", 1)[-1].strip()) or peer or "unix"


def _canonical_address(text: str) -> str | None:
    """`text` as one IP address is always written, or None if it is not one.

    The C parser, not `ipaddress`: this runs for every stream opened behind a proxy, and
    `ipaddress` took 3 % of the service's CPU while 5,000 streams connected.
    """
    for family in (AF_INET, AF_INET6):
        try:
            return inet_ntop(family, inet_pton(family, text))
        except OSError:
            continue
    return None


class Slot:
    """One open connection's place in the counters; `release` is safe to call more than once."""

    __slots__ = ("_address", "_holder", "_limits")

    def __init__(self, limits: ConnectionLimits, holder: str | None, address: str) -> None:
        self._limits: ConnectionLimits | None = limits
        self._holder = holder
        self._address = address

    def release(self) -> None:
        if self._limits is not None:
            self._limits._release(self._holder, self._address)
            self._limits = None


class ConnectionLimits:
    def __init__(self, per_holder: int, per_address: int) -> None:
        self._per_holder = per_holder
        self._per_address = per_address
        self._holders: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def acquire(self, holder: str | None, address: str) -> Slot:
        """Takes a slot, or raises Refused(429) saying which limit is reached."""
        if holder is not None and self._holders[holder] >= self._per_holder:
            raise Refused(
                429, f"Too many connections for this ticket's user: at most {self._per_holder} at a time\n"
            )
        if self._addresses[address] >= self._per_address:
            raise Refused(
                429, f"Too many connections from {address}: at most {self._per_address} at a time\n"
            )
        if holder is not None:
            self._holders[holder] += 1
        self._addresses[address] += 1
        return Slot(self, holder, address)

    def _release(self, holder: str | None, address: str) -> None:
        for counter, key in ((self._holders, holder), (self._addresses, address)):
            if key is not None:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]


class ChannelsServed(Protocol):
    """What the room needs to know of the hub."""

    @property
    def channel_count(self) -> int: ...

    def serves(self, channel: str) -> bool: ...


class RoomRefusal(Enum):
    """Why a stream found no room for its channels (the `reason` of `sse_streams_refused_total`)."""

    PROCESS_FULL = "channels per process"
    PUBLIC_FULL = "public channels per process"


class ChannelRefused(Refused):
    def __init__(self, reason: RoomRefusal, message: str) -> None:
        super().__init__(503, message)
        self.reason = reason


class ChannelRoom:
    """Whether a process has room for a stream's channels (those it serves already always fit)."""

    def __init__(self, max_channels: int, reserved_private: int, policies: PolicyTable) -> None:
        self._max = max_channels
        self._public_max = max_channels - reserved_private
        self.policies = policies

    def check(self, channels: Sequence[str], served: ChannelsServed) -> None:
        """Raises ChannelRefused (503) when the new channels do not fit."""
        new = [channel for channel in channels if not served.serves(channel)]
        if not new:
            return
        total = served.channel_count + len(new)
        if total > self._max:
            raise ChannelRefused(
                RoomRefusal.PROCESS_FULL,
                f"Too many channels on this server: at most {self._max}; retry later\n",
            )
        if total > self._public_max and any(self.policies.is_public(c) for c in new):
            raise ChannelRefused(
                RoomRefusal.PUBLIC_FULL,
                f"Too many public channels on this server: at most {self._public_max}; retry later\n",
            )
