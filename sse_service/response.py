"""`EventSourceResponse` whose events are pushed by the hub, with one task per stream.

sse-starlette's response runs, per connection, a task group of four tasks (body, ping, exit
watcher, disconnect listener) with their anyio events: the service spent 45 KB per idle stream,
where a bare ASGI app holding a streaming response under uvicorn costs about 10 KB. Each stream here
keeps sse-starlette's headers, its `ServerSentEvent` encoding of the heartbeat and its HEAD answer,
and replaces what runs per stream:

- body: the hub writes frames to the connection's ASGI `send` from its own task (`Subscriber`);
- ping: one timer in the hub writes heartbeats to every idle stream (`Hub._beat`), and cuts a stream
  whose write has waited longer than the send timeout (sse-starlette's `SendTimeoutError`) as a slow
  consumer, counted and logged, never raised into the server;
- exit watcher: the hub learns of server shutdown once (`_shutdown`) and ends every stream, at once
  or paced over `SSE_DRAIN_SECONDS` (`drain`);
- disconnect listener: the server's own request task waits for `http.disconnect`, and whoever ends
  the stream from outside wakes that task (`Subscriber.wait_end`).
So a stream is one task (the server's), one `Subscriber` and this object. Two more cuts: the request
reaches `stream` without passing Starlette's middlewares and router (`app.StreamsFirst`), and the
headers come from one template response. Measured with `python -m bench --scenario idle-5k`
(5000 idle streams through nginx, RSS growth): the service went from 45 KB to 12.7 KB per stream.

A server-side end tells the client to come back (`retry:`), and it resumes from its Last-Event-ID,
so a rolling restart loses nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from .drain import farewell_retry_ms
from .ending import End
from .gate import Admission
from .hub import Hub
from .protocol import Positions, encode_farewell, encode_opening
from .redis_clients import REDIS_ERRORS
from .settings import Settings
from .subscriber import Subscriber

logger = logging.getLogger(__name__)


class _NoBody:
    """The body sse-starlette would iterate: the hub writes instead (only HEAD reaches it, unread)."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


_NO_BODY = _NoBody()


@functools.cache
def _template() -> EventSourceResponse:
    """sse-starlette's response as it would be made for every stream: its headers, computed once."""
    return EventSourceResponse(_NO_BODY, sep="\n")


class HubEventSourceResponse(EventSourceResponse):
    """One stream: admitted, attached to the hub, replayed from the client's position, then live."""

    def __init__(
        self,
        hub: Hub,
        channels: tuple[str, ...],
        settings: Settings,
        admission: Admission,
        position: Positions | None = None,
        rewind: dict[str, int] | None = None,
    ) -> None:
        self._hub = hub
        self._channels = channels
        self._settings = settings
        self._admission = admission
        self._position = position
        # Past events to replay per channel (`rewind=N`), for channels without a position to resume from.
        self._rewind = rewind or {}
        self._subscriber: Subscriber | None = None
        # What EventSourceResponse.__init__ sets and a stream uses, taken from the template rather
        # than built again: the headers (and the lock only its own ping task takes) cost 1.3 KB a stream.
        template = _template()
        self.status_code = template.status_code
        self.raw_headers = template.raw_headers
        self.background = None
        self.body_iterator = _NO_BODY
        self.send_timeout = hub.send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            try:
                await super().__call__(scope, receive, send)
            finally:
                self._admission.leave(self)
            return
        hub = self._hub
        subscriber = self._subscriber = Subscriber(self._channels, send, self._settings.send_buffer_bytes)
        self._admission.enter(self)
        opened = time.monotonic()
        try:
            start = await hub.attach(subscriber)
            resume = {c: p for c, p in (self._position or {}).items() if c in self._channels}
            resume.update(await self._rewound(subscriber, resume))
            start.update(resume)
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            if logger.isEnabledFor(logging.DEBUG):
                channels = ",".join(self._channels)
                logger.debug("stream open channels=%s client=%s", channels, self._admission.client)
            subscriber.open(start, encode_opening(self._settings.retry_ms, self._channels, start))
            if resume:
                await self._replay(subscriber, resume)
            subscriber.go_live()
            end = await subscriber.wait_end(receive)
            if end.stalled:
                # uvicorn closes the connection (and logs that the response was not completed);
                # the client reconnects and resumes from its last id.
                hub.stats.slow_consumers_cut += 1
            elif not end.by_client:
                await self._farewell(subscriber, send, end)
        finally:
            hub.detach(subscriber)
            subscriber.close(End.CLIENT_LEFT)
            assert subscriber.end is not None
            hub.stats.ended[subscriber.end] += 1
            self._admission.leave(self)
            # A line per ordinary open and close was the largest single cost of a connect (13 % of
            # the service's CPU while 5,000 streams connected, by py-spy): they are at DEBUG, and only
            # an end the service caused is told at INFO. nginx's access log has a line per stream.
            level = logging.DEBUG if subscriber.end.by_client else logging.INFO
            if logger.isEnabledFor(level):
                logger.log(
                    level,
                    "stream closed channels=%s client=%s reason=%s seconds=%.1f",
                    ",".join(self._channels),
                    self._admission.client,
                    subscriber.end.value,
                    time.monotonic() - opened,
                )

    def close(self, end: End) -> None:
        """Ends the stream from outside, e.g. when its listener's ticket is revoked."""
        if self._subscriber is not None:
            self._subscriber.close(end)

    async def _rewound(self, subscriber: Subscriber, resume: Positions) -> Positions:
        """Where the channels asked to rewind resume from: replaying from there is the rewind, and
        the hand-off to live is the resume's (`_replay`)."""
        counts = {c: n for c, n in self._rewind.items() if c not in resume}
        if not counts or subscriber.end is not None:
            return {}
        try:
            return await self._hub.rewind_positions(counts)
        except REDIS_ERRORS as exc:
            logger.warning("no rewind position for %s: %s", ",".join(counts), exc)
            subscriber.close(End.HISTORY_UNAVAILABLE)
            return {}

    async def _replay(self, subscriber: Subscriber, resume: Positions) -> None:
        """What the client missed, a page at a time, each written before the next is read."""
        try:
            async for frames in self._hub.history(resume):
                await subscriber.drained()
                if subscriber.end is not None:
                    return
                resets = [frame.channel for frame in frames if frame.reset]
                if resets:
                    logger.info("history trimmed past the client's position on %s", ",".join(resets))
                subscriber.replay(frames)
        except REDIS_ERRORS as exc:
            # Streaming without the missed events would lose them; ending makes the client retry.
            logger.warning("history unavailable for %s: %s", ",".join(self._channels), exc)
            subscriber.close(End.HISTORY_UNAVAILABLE)

    async def _farewell(self, subscriber: Subscriber, send: Send, end: End) -> None:
        """Tells the client to come back, then ends the body. A socket that takes neither in time (on
        shutdown, `SSE_SHUTDOWN_GRACE_SECONDS`) is left to the server, which closes it."""
        grace = (
            self._settings.shutdown_grace_seconds if end is End.SERVER_SHUTDOWN else self._hub.send_timeout
        )
        await subscriber.drained()
        try:
            async with asyncio.timeout(grace):
                retry_ms = self._settings.retry_ms
                if end is End.SERVER_SHUTDOWN:
                    retry_ms = farewell_retry_ms(retry_ms, self._settings.drain_seconds)
                farewell = encode_farewell(retry_ms)
                await send({"type": "http.response.body", "body": farewell, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            logger.debug("no farewell for %s within %.1fs", ",".join(self._channels), grace)
