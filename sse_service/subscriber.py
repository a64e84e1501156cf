"""One SSE connection as the hub sees it: a place to write frames that never makes the hub wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, cast

import anyio
from starlette.types import Message, Send

from ._eager import EagerCoroutine
from .history import History
from .protocol import Positions, format_positions, frame_position, split_frames

logger = logging.getLogger(__name__)


class Subscriber:
    """Writes pushed chunks straight to the connection's ASGI `send`.

    While the socket accepts data, `push` completes inside the caller (the hub) with no task switch.
    When the socket has paused writing, the write in flight is finished by a task of this
    subscriber's own and later chunks wait in a backlog of at most `max_backlog_bytes`; past that
    the subscriber is closed as a slow consumer, so one stalled reader costs bounded memory and
    never holds up the others.

    Until `go_live` (called once the response has started), pushed chunks are held back in order.
    """

    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_live",
        "_max_backlog_bytes",
        "_positions",
        "_send",
        "_writer",
        "channels",
        "close_reason",
        "closed",
    )

    def __init__(
        self, channels: tuple[str, ...], send: Send, max_backlog_bytes: int, closed: anyio.Event
    ) -> None:
        self.channels = channels
        # Shared with the response, which also sets it on server shutdown.
        self.closed = closed
        self.close_reason = ""
        self._send = send
        self._max_backlog_bytes = max_backlog_bytes
        self._live = False
        self._backlog: list[bytes] = []
        self._backlog_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        # Per channel, the newest id written; None once there is nothing to track (see `go_live`).
        self._positions: Positions | None = None

    def push(self, chunk: bytes) -> None:
        if self.closed.is_set():
            return
        if self._live and self._positions is not None:
            chunk = self._advance(split_frames(chunk))
            if not chunk:
                return
        if not self._live or self._writer is not None:
            self._hold(chunk)
        else:
            self._write(chunk)

    def go_live(self, start: Positions, history: History | None = None) -> None:
        """Starts writing: `history` first when resuming, then what was pushed meanwhile.

        `start` holds each channel's position before the first frame to write. A frame at or below
        it is dropped: what was pushed while the stream opened and is in `history` already, or what
        the hub delivers late, as it fills a gap of its own behind `history`. On a connection with
        several channels every frame's id also carries the other channels' positions
        (`protocol.parse_positions`), so one Last-Event-ID resumes them all; on a connection with one,
        ids only grow once a frame from the hub got through, and frames are then written as pushed.
        """
        if self.closed.is_set():
            return  # e.g. revoked while opening: not even its history
        self._live = True
        chunk = self._take_backlog()
        if history is not None or len(self.channels) > 1:
            self._positions = dict(start)
            replay = [frame for _, _, frame in history.frames] if history is not None else []
            chunk = self._advance(replay, from_hub=False) + self._advance(split_frames(chunk))
        if chunk:
            self._write(chunk)

    def close(self, reason: str) -> None:
        """Ends the stream: the response waiting on `closed` finishes and the client reconnects.

        The first reason given is the one reported; closing again only makes sure nothing is left.
        """
        self.close_reason = self.close_reason or reason
        self.closed.set()
        if self._writer is not None:
            self._writer.cancel()
        self._backlog.clear()
        self._backlog_bytes = 0

    async def wait_writes(self) -> None:
        """Waits for a handed-off write, so the response never sends its end while one is pending."""
        if self._writer is not None:
            await asyncio.wait([self._writer])

    def _hold(self, chunk: bytes) -> None:
        self._backlog.append(chunk)
        self._backlog_bytes += len(chunk)
        if self._backlog_bytes > self._max_backlog_bytes:
            logger.warning(
                "slow consumer on %s: %d bytes waiting, disconnecting",
                ",".join(self.channels),
                self._backlog_bytes,
            )
            self.close("slow consumer")

    def _advance(self, frames: list[bytes], from_hub: bool = True) -> bytes:
        positions = self._positions
        assert positions is not None
        several = len(self.channels) > 1
        kept = []
        for frame in frames:
            channel, stream_id = frame_position(frame)
            position = positions.get(channel)
            if position is not None and stream_id <= position:
                continue
            positions[channel] = stream_id
            if several:
                others = {c: positions[c] for c in self.channels if c != channel and c in positions}
                end_of_id = frame.index(b"\n")
                frame = frame[:end_of_id] + format_positions(others) + frame[end_of_id:]
            kept.append(frame)
        if kept and from_hub and not several:
            self._positions = None
        return b"".join(kept)

    def _take_backlog(self) -> bytes:
        chunk = b"".join(self._backlog)
        self._backlog.clear()
        self._backlog_bytes = 0
        return chunk

    def _write(self, chunk: bytes) -> None:
        # ASGI servers' `send` is a coroutine function; the Send type only promises an awaitable.
        sending = cast(Coroutine[Any, Any, None], self._send(_body_message(chunk)))
        try:
            write = EagerCoroutine(sending)
        except Exception as exc:  # the connection broke under us; the response will notice too
            logger.debug("write failed: %r", exc)
            self.close("write failed")
            return
        if not write.done:
            self._writer = asyncio.get_running_loop().create_task(self._finish_writes(write))

    async def _finish_writes(self, write: EagerCoroutine[None]) -> None:
        try:
            await write
            while self._backlog and not self.closed.is_set():
                await self._send(_body_message(self._take_backlog()))
        except Exception as exc:
            logger.debug("write failed: %r", exc)
            self.close("write failed")
        finally:
            self._writer = None


def _body_message(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}
