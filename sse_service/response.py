"""`EventSourceResponse` whose events are pushed by the hub rather than pulled from an iterator."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from .hub import Hub
from .protocol import encode_preamble
from .settings import Settings
from .subscriber import Subscriber

logger = logging.getLogger(__name__)


class HubEventSourceResponse(EventSourceResponse):
    """sse-starlette still owns the connection: headers, heartbeats, client disconnect, shutdown.

    Only the data path differs. Pulling events from a per-connection iterator would wake one task per
    connection per message; instead the connection's ASGI `send` is handed to the hub as a
    `Subscriber`, and the body iterator just opens the stream and waits for it to be closed (by the
    hub, by the client leaving, or by server shutdown, which sse-starlette signals through the same
    event).
    """

    def __init__(self, hub: Hub, channels: tuple[str, ...], settings: Settings, client: str) -> None:
        self._hub = hub
        self._channels = channels
        self._settings = settings
        self._client = client
        self._closed = anyio.Event()
        self._subscriber: Subscriber | None = None
        super().__init__(
            self._body(),
            ping=settings.heartbeat_seconds,
            sep="\n",
            ping_message_factory=lambda: ServerSentEvent(comment="ping", sep="\n"),
            # A heartbeat that cannot be written for this long means the client is gone or stalled.
            send_timeout=max(settings.heartbeat_seconds, 5.0),
            shutdown_event=self._closed,
            shutdown_grace_period=settings.shutdown_grace_seconds,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await super().__call__(scope, receive, send)
            return
        subscriber = Subscriber(self._channels, send, self._settings.send_buffer_bytes, self._closed)
        self._subscriber = subscriber
        opened = time.monotonic()
        try:
            await self._hub.attach(subscriber)
            logger.info("stream open channels=%s client=%s", ",".join(self._channels), self._client)
            await super().__call__(scope, receive, send)
        finally:
            self._hub.detach(subscriber)
            subscriber.close("client left")
            logger.info(
                "stream closed channels=%s client=%s reason=%s seconds=%.1f",
                ",".join(self._channels),
                self._client,
                subscriber.close_reason,
                time.monotonic() - opened,
            )

    def close(self, reason: str) -> None:
        """Ends the stream from outside, e.g. when its listener's ticket is revoked."""
        if self._subscriber is not None:
            self._subscriber.close(reason)
        else:
            self._closed.set()

    async def _body(self) -> AsyncIterator[bytes]:
        assert self._subscriber is not None
        yield encode_preamble(self._settings.retry_ms)
        self._subscriber.go_live()
        await self._closed.wait()
        await self._subscriber.wait_writes()
        self._subscriber.close("server shutdown")
