"""Admission of a stream: a ticket for its private channels, then a slot under the connection limits.

The admitted response is wrapped so that, however the stream ends, its slot is freed and it leaves
the revocation registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .auth import Grant, check_ticket, is_public, ticket_from
from .limits import ConnectionLimits, Slot, client_address
from .redis_clients import CommandClient
from .response import HubEventSourceResponse
from .revocation import Revocations
from .settings import Settings


class Gate:
    def __init__(self, settings: Settings, client: CommandClient, revocations: Revocations) -> None:
        self._settings = settings
        self._client = client
        self._revocations = revocations
        self._limits = ConnectionLimits(
            settings.max_connections_per_user, settings.max_connections_per_address
        )

    async def admit(self, request: Request, channels: tuple[str, ...]) -> Admission:
        """Raises Refused (401, 403, 429 or 503) with the reason."""
        settings = self._settings
        peer = request.client.host if request.client else None
        address = client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
        private = [channel for channel in channels if not is_public(channel, settings.public_prefixes)]
        grant = None
        if private:
            token = ticket_from(request.query_params, request.cookies)
            grant = await check_ticket(self._client, settings.key_prefix, token, private)
        slot = self._limits.acquire(grant.holder if grant else None, address)
        return Admission(address, grant, slot, self._revocations)


@dataclass
class Admission:
    address: str
    grant: Grant | None
    slot: Slot
    revocations: Revocations

    @property
    def client(self) -> str:
        """How the stream's log lines name its client."""
        if self.grant is not None and self.grant.user:
            return f"{self.address} user={self.grant.user}"
        return self.address

    def guard(self, response: HubEventSourceResponse) -> GuardedStream:
        return GuardedStream(self, response)


class GuardedStream:
    """The ASGI app the route returns: the stream, registered for revocation while it runs."""

    def __init__(self, admission: Admission, response: HubEventSourceResponse) -> None:
        self._admission = admission
        self._response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admission = self._admission
        user = admission.grant.user if admission.grant is not None else ""
        if user:
            admission.revocations.add(user, self._response)
        try:
            await self._response(scope, receive, send)
        finally:
            if user:
                admission.revocations.discard(user, self._response)
            admission.slot.release()
