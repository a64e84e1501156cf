"""A test client for live SSE streams: keeps the exact bytes and parses events as a browser does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from sse_service.protocol import OPENING_EVENT

_LINE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: str

    @property
    def channel(self) -> str:
        """The event's own channel: the id starts with `<channel>/<stream id>`."""
        return self.id.partition("/")[0]

    @property
    def stream_id(self) -> str:
        """The event's own stream id (what follows a `,` are the connection's other channels)."""
        return self.id.partition(",")[0].partition("/")[2]


@dataclass
class EventStream:
    response: httpx.Response
    raw: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    ended: bool = False
    _pending: bytes = b""
    _chunks: AsyncIterator[bytes] | None = None
    _fields: dict[str, str] = field(default_factory=dict)
    _data: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> EventStream:
        """Events from bytes already received (complete events only)."""
        stream = cls(response=httpx.Response(200))
        stream._feed(body)
        return stream

    async def read_until(self, done: object, timeout: float = 5.0) -> None:
        """Reads until `done(self)` is true; fails the test after `timeout` seconds."""
        assert callable(done)
        async with asyncio.timeout(timeout):
            while not done(self):
                # An ended stream reads nothing more, and without an await the timeout never fires.
                assert not self.ended, "the stream ended"
                await self._read_chunk()

    async def wait_for_events(self, count: int, timeout: float = 5.0) -> list[Event]:
        await self.read_until(lambda s: len(s.events) >= count, timeout)
        return self.events

    async def wait_for_comment(self, text: str, timeout: float = 5.0) -> None:
        await self.read_until(lambda s: text in s.comments, timeout)

    async def read_to_end(self, timeout: float = 5.0) -> None:
        await self.read_until(lambda s: s.ended, timeout)

    async def read_more(self) -> None:
        """Reads whatever arrives next (at least one chunk, or the end of the stream)."""
        await self._read_chunk()

    async def _read_chunk(self) -> None:
        if self._chunks is None:
            self._chunks = self.response.aiter_raw()
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.ended = True
            return
        self.raw += chunk
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        lines = _LINE.split(self._pending + chunk)
        self._pending = lines.pop()
        for line in lines:
            self._line(line.decode())

    def _line(self, line: str) -> None:
        # https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
        if line == "":
            # The opening block's type is the service's own: a page does not listen to it.
            if self._data and self._fields.get("event") != OPENING_EVENT.decode():
                self.events.append(
                    Event(self.last_event_id, self._fields.get("event", "message"), "\n".join(self._data))
                )
            self._fields.clear()
            self._data.clear()
            return
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        elif name == "event":
            self._fields["event"] = value


@asynccontextmanager
async def open_stream(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> AsyncIterator[EventStream]:
    """Opens `url` and waits for the stream's first bytes, which the service sends once subscribed."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(timeout, read=None)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        stream = EventStream(response)
        if response.status_code == 200:
            await stream.wait_for_comment("connected", timeout)
        yield stream


@dataclass
class Followed:
    events: list[Event] = field(default_factory=list)
    connections: int = 0
    clean_ends: int = 0
    errors: int = 0
    timed_out: bool = False

    def __str__(self) -> str:
        return (
            f"{len(self.events)} events over {self.connections} connections "
            f"({self.clean_ends} ended cleanly, {self.errors} broke, timed out: {self.timed_out})"
        )


async def follow(
    url: str, done: object, timeout: float, last_event_id: str = "", followed: Followed | None = None
) -> Followed:
    """Listens as a browser's EventSource does, until `done(events)` holds or `timeout` passes.

    A stream that ends or breaks is reopened after the `retry:` delay with `Last-Event-ID`; any
    answer but 200 fails the test, because it would stop a real EventSource for good.
    """
    assert callable(done)
    result = followed if followed is not None else Followed()
    try:
        async with asyncio.timeout(timeout):
            await _follow(url, done, last_event_id, result)
    except TimeoutError:
        result.timed_out = True
    return result


async def _follow(url: str, done: object, last_event_id: str, result: Followed) -> None:
    assert callable(done)
    retry = 1.0
    while not done(result.events):
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                assert response.status_code == 200, f"an EventSource would give up: {response.status_code}"
                result.connections += 1
                stream = EventStream(response, last_event_id=last_event_id)
                while not stream.ended and not done(result.events):
                    seen = len(stream.events)
                    await stream.read_more()
                    result.events += stream.events[seen:]
                    last_event_id = stream.last_event_id
                    retry = (stream.retry or 1000) / 1000
                result.clean_ends += stream.ended
        except httpx.TransportError:
            result.errors += 1
        if not done(result.events):
            await asyncio.sleep(retry)
