"""One SSE connection as the hub sees it: a place to write frames that never makes the hub wait."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from enum import Enum
from typing import Any, cast

from sse_starlette import ServerSentEvent
from starlette.types import Message, Receive, Send

from ._eager import EagerCoroutine
from .ending import End
from .protocol import Frame, Positions, channel_list_tag, format_positions

logger = logging.getLogger(__name__)

# sse-starlette's encoding of the comment its own heartbeat sends.
PING = ServerSentEvent(comment="ping", sep="\n").encode()


class Run:
    """Consecutive frames of one channel in one batch: joined once for every one-channel listener."""

    __slots__ = ("_wire", "channel", "frames", "weight")

    def __init__(self, channel: str, frame: Frame) -> None:
        self.channel = channel
        self.frames = [frame]
        self.weight = len(frame.wire)
        self._wire: bytes | None = None

    def add(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.weight += len(frame.wire)

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = b"".join(frame.wire for frame in self.frames)
        return self._wire


class Stage(Enum):
    OPENING = "opening"  # attached; the hub's frames wait until the stream is live
    REPLAYING = "replaying"  # the response started and writes history; the hub's frames still wait
    LIVE = "live"  # the hub's frames are written as pushed


class Subscriber:
    """Writes frames straight to the connection's ASGI `send`, from the pusher's own task.

    While the socket accepts data, `push` completes inside the caller (the hub) with no task switch.
    When the socket has paused writing, the write in flight is finished by a task of this
    subscriber's own, and later frames wait, at most `max_backlog_bytes` of them; past that, or when
    a write stays unfinished longer than the send timeout (`beat`), the subscriber is closed as a slow
    consumer, so one stalled reader costs bounded memory and never holds up the others.

    Per channel it keeps the newest id written, and drops any frame at or below it: what was
    pushed while the stream opened and was in its history already, or what the hub delivers late
    as it fills a gap of its own. On a connection with several channels every frame's id also
    carries the other channels' positions (`protocol.parse_positions`), so one Last-Event-ID
    resumes them all.
    """

    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_idle_beats",
        "_max_backlog_bytes",
        "_positions",
        "_send",
        "_several",
        "_stage",
        "_tag",
        "_waiter",
        "_waking",
        "_write_since",
        "_writer",
        "channels",
        "end",
    )

    def __init__(self, channels: tuple[str, ...], send: Send, max_backlog_bytes: int) -> None:
        self.channels = channels
        self.end: End | None = None
        self._send = send
        self._max_backlog_bytes = max_backlog_bytes
        self._stage = Stage.OPENING
        self._several = len(channels) > 1
        self._tag = channel_list_tag(channels) if self._several else b""
        self._positions: Positions = {}
        self._backlog: list[Frame] = []
        self._backlog_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._write_since = 0.0
        # Heartbeat ticks (two per SSE_HEARTBEAT_SECONDS) since the last write.
        self._idle_beats = 0
        # The response's task while it waits for the end (`wait_end`), woken by `close`.
        self._waiter: asyncio.Task[Any] | None = None
        self._waking = False

    def push(self, runs: Sequence[Run]) -> None:
        """Frames from the hub, for the channels of this connection."""
        if self.end is not None:
            return
        if self._stage is not Stage.LIVE or self._writer is not None:
            for run in runs:
                self._backlog += run.frames
                self._backlog_bytes += run.weight
            if self._backlog_bytes > self._max_backlog_bytes:
                logger.warning(
                    "slow consumer on %s: %d bytes waiting, disconnecting",
                    ",".join(self.channels),
                    self._backlog_bytes,
                )
                self.close(End.SLOW_CONSUMER)
            return
        if self._several:
            chunk = self._encode([frame for run in runs for frame in run.frames])
        elif len(runs) == 1:
            chunk = self._encode_run(runs[0])
        else:
            chunk = b"".join(self._encode_run(run) for run in runs)
        if chunk:
            self._write(chunk)

    def open(self, start: Positions, opening: bytes) -> None:
        """The response has started: `opening` goes first (`protocol.encode_opening`), and channels
        start at `start`."""
        self._positions = dict(start)
        self._stage = Stage.REPLAYING
        self.write(opening)

    def replay(self, frames: list[Frame]) -> None:
        """History, written ahead of what the hub pushed meanwhile; the caller awaits `drained` first."""
        chunk = self._encode(frames)
        if chunk:
            self.write(chunk)

    def go_live(self) -> None:
        """From now on frames are written as pushed; what was pushed until now follows the history."""
        if self.end is not None:
            return
        self._stage = Stage.LIVE
        if self._writer is None:
            chunk = self._encode(self._take_backlog())
            if chunk:
                self._write(chunk)

    def write(self, chunk: bytes) -> None:
        """Writes `chunk` now: the caller has awaited `drained`, so nothing is in flight."""
        assert self._writer is None, "await drained() first"
        if chunk and self.end is None:
            self._write(chunk)

    async def drained(self) -> None:
        """Waits until what was written has left, or the write was abandoned (`close`)."""
        while self._writer is not None:
            await asyncio.wait([self._writer])

    def beat(self, now: float, send_timeout: float) -> None:
        """The hub's heartbeat tick, twice per heartbeat interval: a comment on a stream idle for two
        ticks, so no stream stays silent longer than the interval; a stream whose write has waited
        longer than `send_timeout` is cut as a slow consumer."""
        if self.end is not None or self._stage is Stage.OPENING:
            return
        if self._writer is not None:
            if now - self._write_since > send_timeout:
                logger.warning(
                    "slow consumer on %s: a write waited %.0fs", ",".join(self.channels), send_timeout
                )
                self.close(End.SLOW_CONSUMER)
        else:
            self._idle_beats += 1
            if self._idle_beats >= 2:
                self._write(PING)

    def close(self, end: End) -> None:
        """Ends the stream: the response's task waiting in `wait_end` wakes, and the client reconnects.

        The first reason given is the one reported; closing again only makes sure nothing is left.
        """
        if self.end is None:
            self.end = end
        if self._writer is not None:
            # Abandoned: a task cancelled before it first ran never reaches its own clean-up.
            self._writer.cancel()
            self._writer = None
        self._backlog.clear()
        self._backlog_bytes = 0
        if self._waiter is not None and not self._waking:
            self._waking = True
            self._waiter.cancel()

    async def wait_end(self, receive: Receive) -> End:
        """Waits, in the response's own task, for the client to leave or for `close`.

        `close` wakes the task by cancelling it, so no second task or event per stream is needed.
        """
        task = asyncio.current_task()
        assert task is not None
        if self.end is None:
            self._waiter = task
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except asyncio.CancelledError:
                if not self._waking:
                    raise  # the server cancels the request: not ours to swallow
                task.uncancel()
            else:
                if self._waking:  # closed just as the client left: the cancellation is on its way
                    self._waiter = None
                    try:
                        await asyncio.sleep(0)
                    except asyncio.CancelledError:
                        task.uncancel()
            finally:
                self._waiter = None
            self.close(End.CLIENT_LEFT)
        assert self.end is not None
        return self.end

    def _encode_run(self, run: Run) -> bytes:
        """One channel's frames; all of them as one shared chunk when they are all new."""
        position = self._positions.get(run.channel)
        if position is None or run.frames[0].id > position:
            self._positions[run.channel] = run.frames[-1].id
            return run.wire
        return self._encode(run.frames)

    def _encode(self, frames: list[Frame]) -> bytes:
        positions = self._positions
        kept = []
        for frame in frames:
            position = positions.get(frame.channel)
            if position is not None and frame.id <= position:
                continue
            positions[frame.channel] = frame.id
            if self._several:
                kept.append(
                    frame.with_positions(format_positions(self.channels, self._tag, frame.channel, positions))
                )
            else:
                kept.append(frame.wire)
        return b"".join(kept)

    def _take_backlog(self) -> list[Frame]:
        frames = self._backlog
        self._backlog = []
        self._backlog_bytes = 0
        return frames

    def _write(self, chunk: bytes) -> None:
        self._idle_beats = 0
        # ASGI servers' `send` is a coroutine function; the Send type only promises an awaitable.
        sending = cast(Coroutine[Any, Any, None], self._send(_body_message(chunk)))
        try:
            write = EagerCoroutine(sending)
        except Exception as exc:  # the connection broke under us; the response will notice too
            logger.debug("write failed: %r", exc)
            self.close(End.WRITE_FAILED)
            return
        if not write.done:
            self._write_since = time.monotonic()
            self._writer = asyncio.get_running_loop().create_task(self._finish_writes(write))

    async def _finish_writes(self, write: EagerCoroutine[None]) -> None:
        try:
            await write
            while self._backlog and self._stage is Stage.LIVE and self.end is None:
                chunk = self._encode(self._take_backlog())
                if chunk:
                    self._write_since = time.monotonic()
                    await self._send(_body_message(chunk))
        except Exception as exc:
            logger.debug("write failed: %r", exc)
            self.close(End.WRITE_FAILED)
        finally:
            self._writer = None


def _body_message(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}
