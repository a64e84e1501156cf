"""One connection's writes, driven by a hand-written ASGI `send`."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from sse_service.ending import End
from sse_service.protocol import Envelope, Frame, channel_list_tag, event_frame
from sse_service.subscriber import PING, Run, Subscriber


class Socket:
    """An ASGI `send` that takes writes at once, or holds them while `paused` is set."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused = False
        self.resume = asyncio.Event()

    async def send(self, message: Message) -> None:
        if self.paused:
            await self.resume.wait()
        self.written.append(message["body"])

    @property
    def body(self) -> bytes:
        return b"".join(self.written)


def frame(channel: str, ms: int, data: str = "x") -> Frame:
    return event_frame(channel, (ms, 0), Envelope(b"%d-0" % ms, b"", data.encode()))


def run(*frames: Frame) -> Run:
    result = Run(frames[0].channel, frames[0])
    for more in frames[1:]:
        result.add(more)
    return result


def live(
    channels: tuple[str, ...], socket: Socket, start: dict[str, tuple[int, int]], backlog: int = 1 << 20
) -> Subscriber:
    subscriber = Subscriber(channels, socket.send, backlog)
    subscriber.open(start, b"")
    subscriber.go_live()
    return subscriber


async def test_frames_pushed_before_the_stream_is_live_follow_its_history_without_duplicates() -> None:
    socket = Socket()
    subscriber = Subscriber(("a",), socket.send, 1 << 20)
    subscriber.push([run(frame("a", 2), frame("a", 3))])
    subscriber.open({"a": (1, 0)}, b"open\n\n")
    subscriber.replay([frame("a", 2)])
    assert socket.body == b"open\n\n" + frame("a", 2).wire
    subscriber.go_live()
    assert socket.body == b"open\n\n" + frame("a", 2).wire + frame("a", 3).wire


async def test_a_run_of_new_frames_is_written_as_its_shared_chunk() -> None:
    socket = Socket()
    subscriber = live(("a",), socket, {"a": (1, 0)})
    shared = run(frame("a", 2), frame("a", 3))
    subscriber.push([shared])
    assert socket.written == [shared.wire]
    subscriber.push([run(frame("a", 3), frame("a", 4))])  # 3 was written: only 4 follows
    assert socket.written[-1] == frame("a", 4).wire


async def test_on_several_channels_each_id_carries_the_others_positions() -> None:
    socket = Socket()
    subscriber = live(("a", "b"), socket, {"a": (1, 0), "b": (5, 0)})
    subscriber.push([run(frame("a", 2, "1")), run(frame("b", 6, "2"))])
    tag = channel_list_tag(("a", "b"))
    assert socket.body == b"id: a/2-0,~%s,1:5-0\ndata: 1\n\nid: b/6-0,~%s,0:2-0\ndata: 2\n\n" % (tag, tag)


async def test_a_paused_socket_parks_frames_then_cuts_the_subscriber_past_its_backlog() -> None:
    socket = Socket()
    subscriber = live(("a",), socket, {}, backlog=100)
    socket.paused = True
    subscriber.push([run(frame("a", 1))])
    subscriber.push([run(frame("a", 2))])
    assert subscriber.end is None
    subscriber.push([run(frame("a", 3, "y" * 100))])
    assert subscriber.end is End.SLOW_CONSUMER
    await subscriber.drained()


async def test_parked_frames_leave_in_order_once_the_socket_takes_data_again() -> None:
    socket = Socket()
    subscriber = live(("a",), socket, {})
    socket.paused = True
    for ms in (1, 2, 3):
        subscriber.push([run(frame("a", ms))])
    socket.paused = False
    socket.resume.set()
    await subscriber.drained()
    assert socket.body == b"".join(frame("a", ms).wire for ms in (1, 2, 3))


async def test_a_heartbeat_goes_to_a_stream_idle_for_two_ticks() -> None:
    socket = Socket()
    subscriber = live(("a",), socket, {})
    subscriber.beat(now=0.0, send_timeout=5)
    subscriber.push([run(frame("a", 1))])
    subscriber.beat(now=1.0, send_timeout=5)
    assert PING not in socket.written
    subscriber.beat(now=2.0, send_timeout=5)
    assert socket.written[-1] == PING == b": ping\n\n"
    subscriber.beat(now=3.0, send_timeout=5)
    assert socket.written.count(PING) == 1


async def test_a_write_waiting_past_the_send_timeout_cuts_a_slow_consumer() -> None:
    socket = Socket()
    subscriber = live(("a",), socket, {})
    socket.paused = True
    subscriber.push([run(frame("a", 1))])
    subscriber.beat(now=asyncio.get_running_loop().time() + 1, send_timeout=5)
    assert subscriber.end is None
    subscriber.beat(now=float("inf"), send_timeout=5)
    assert subscriber.end is End.SLOW_CONSUMER
    await subscriber.drained()


async def test_closing_wakes_the_task_waiting_for_the_end() -> None:
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()
        return {"type": "http.disconnect"}

    subscriber = live(("a",), Socket(), {})
    waiting = asyncio.create_task(subscriber.wait_end(receive))
    await asyncio.sleep(0)
    subscriber.close(End.REVOKED)
    assert await waiting is End.REVOKED
    assert not waiting.cancelled()


async def test_a_client_that_leaves_ends_the_stream() -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    subscriber = live(("a",), Socket(), {})
    assert await subscriber.wait_end(receive) is End.CLIENT_LEFT


async def test_the_servers_own_cancellation_is_not_swallowed() -> None:
    async def receive() -> Message:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    subscriber = live(("a",), Socket(), {})
    waiting = asyncio.create_task(subscriber.wait_end(receive))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
