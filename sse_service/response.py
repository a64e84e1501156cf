"""`EventSourceResponse` whose events are pushed by the hub rather than pulled from an iterator."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import ASGIApp, Receive, Scope, Send

from .history import History
from .hub import Hub
from .protocol import Positions, encode_farewell, encode_preamble
from .redis_clients import REDIS_ERRORS
from .settings import Settings
from .subscriber import Subscriber

logger = logging.getLogger(__name__)


_SERVER_SEND = "sse_service.server_send"


def expose_server_send(app: ASGIApp) -> ASGIApp:
    """Wraps the whole app so a stream can write through the server's own `send`.

    Starlette's error and exception middlewares each wrap `send` to note that a response started;
    once it has, their wrappers only add two coroutine calls to every frame the hub writes
    (14 % of the service's CPU in `make bench`). The response still starts and ends through them.
    """

    async def with_server_send(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_SERVER_SEND] = send
        await app(scope, receive, send)

    return with_server_send


class SlowConsumerError(Exception):
    """Ends a response without its closing chunk: a stalled socket would never take it."""


class HubEventSourceResponse(EventSourceResponse):
    """sse-starlette still owns the connection: headers, heartbeats, client disconnect, shutdown.

    Only the data path differs. Pulling events from a per-connection iterator would wake one task per
    connection per message; instead the connection's ASGI `send` is handed to the hub as a
    `Subscriber`, and the body iterator just opens the stream and waits for it to be closed (by the
    hub, by the client leaving, or by server shutdown, which sse-starlette signals through the same
    event). A server-side end tells the client to come back (`retry:`), and it resumes from its
    Last-Event-ID, so a rolling restart loses nothing.
    """

    def __init__(
        self,
        hub: Hub,
        channels: tuple[str, ...],
        settings: Settings,
        client: str,
        position: Positions | None = None,
    ) -> None:
        self._hub = hub
        self._channels = channels
        self._settings = settings
        self._client = client
        self._position = position
        self._history: History | None = None
        self._start: Positions = {}
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
        server_send = scope.get(_SERVER_SEND, send)
        subscriber = Subscriber(self._channels, server_send, self._settings.send_buffer_bytes, self._closed)
        self._subscriber = subscriber
        opened = time.monotonic()
        try:
            self._start = await self._hub.attach(subscriber)
            if self._position is not None:
                await self._read_history()
            logger.info("stream open channels=%s client=%s", ",".join(self._channels), self._client)
            await super().__call__(scope, receive, send)
        except SlowConsumerError:
            # uvicorn closes the connection (and logs that the response was not completed);
            # the client reconnects and resumes from its last id.
            self._hub.stats.slow_consumers_cut += 1
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

    async def _read_history(self) -> None:
        """Channels the client has a position for resume from it; the others start where the hub is."""
        assert self._position is not None and self._subscriber is not None
        resume = {c: p for c, p in self._position.items() if c in self._channels}
        self._start.update(resume)
        try:
            self._history = await self._hub.read_history(resume)
        except REDIS_ERRORS as exc:
            # Streaming without the missed events would lose them; ending makes the client retry.
            logger.warning("history unavailable for %s: %s", ",".join(self._channels), exc)
            self._subscriber.close("history unavailable")
            return
        if self._history.resets:
            logger.info("history trimmed past the client's position on %s", ",".join(self._history.resets))

    async def _body(self) -> AsyncIterator[bytes]:
        subscriber = self._subscriber
        assert subscriber is not None
        yield encode_preamble(self._settings.retry_ms)
        subscriber.go_live(self._start, self._history)
        await self._closed.wait()
        await subscriber.wait_writes()
        if subscriber.close_reason == "slow consumer":
            raise SlowConsumerError
        subscriber.close("server shutdown")
        yield encode_farewell(self._settings.retry_ms)
