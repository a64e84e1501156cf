"""Admission of a stream: room for its channels, a ticket for its private ones, then a slot under the
connection limits."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from .auth import Grant, check_ticket, is_public, ticket_from
from .hub import Hub
from .limits import ChannelRefused, ChannelRoom, ConnectionLimits, Slot, client_address
from .redis_clients import CommandClient
from .revocation import Closable, Revocations
from .settings import Settings


class Gate:
    def __init__(self, settings: Settings, client: CommandClient, revocations: Revocations, hub: Hub) -> None:
        self._settings = settings
        self._client = client
        self._revocations = revocations
        self._hub = hub
        self._room = ChannelRoom(
            settings.max_channels_per_process, settings.private_reserve, settings.public_prefixes
        )
        self._limits = ConnectionLimits(
            settings.max_connections_per_user, settings.max_connections_per_address
        )

    async def admit(self, request: Request, channels: tuple[str, ...]) -> Admission:
        """Raises Refused (401, 403, 429 or 503) with the reason."""
        settings = self._settings
        try:
            self._room.check(channels, self._hub)
        except ChannelRefused as refusal:
            self._hub.stats.streams_refused[refusal.reason.value] += 1
            raise
        peer = request.client.host if request.client else None
        address = client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
        private = [channel for channel in channels if not is_public(channel, settings.public_prefixes)]
        grant = None
        mark = self._revocations.mark()
        if private:
            token = ticket_from(request.query_params, request.cookies)
            grant = await check_ticket(self._client, settings.key_prefix, token, private)
        slot = self._limits.acquire(grant.holder if grant else None, address)
        return Admission(address, grant, slot, self._revocations, mark)


@dataclass
class Admission:
    """What a stream was admitted with; the response holds it from `enter` to `leave`."""

    address: str
    grant: Grant | None
    slot: Slot
    revocations: Revocations
    # When the ticket was about to be read: a revocation since then closes the stream at `enter`.
    mark: int

    @property
    def user(self) -> str:
        return self.grant.user if self.grant is not None else ""

    @property
    def client(self) -> str:
        """How the stream's log lines name its client."""
        if self.user:
            return f"{self.address} user={self.user}"
        return self.address

    def enter(self, stream: Closable) -> None:
        """The stream runs: revoking its user's tickets closes it."""
        if self.grant is not None and self.user:
            self.revocations.add(self.user, self.grant.ticket_hash, stream, self.mark)

    def leave(self, stream: Closable) -> None:
        """However the stream ended: its slot is free and it leaves the revocation registry."""
        if self.user:
            self.revocations.discard(self.user, stream)
        self.slot.release()
