"""Connection limits per ticket holder and per client address, and where the address comes from.

The counters live in this process. With N uvicorn workers or containers a client may hold up to N
times each limit; nginx spreads connections over them, so the limits still bound what one client
costs each process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from .exceptions import Refused


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
    try:
        return str(ip_address(forwarded_for.rsplit(",", 1)[-1].strip()))
    except ValueError:
        return peer or "unix"


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
