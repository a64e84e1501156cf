"""Run a coroutine's first step right now, and finish it later only if it had to wait.

Python 3.12 calls this an eager task; 3.11 has none. The hub needs it twice on the hot path:
- writing a frame to a connection through its ASGI `send` completes without waiting unless the
  socket has paused writing, so the hub can write to thousands of connections from its own task with
  no task switch per connection, and hand off only the few connections that are paused;
- reading from Redis completes without waiting while replies are already buffered, which is how the
  hub knows a batch of messages has ended.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class EagerCoroutine(Generic[T]):
    """Steps `coro` once on construction; `done` tells whether it finished in that step.

    Awaiting it returns the result, resuming the coroutine inside the awaiting task if it was
    suspended. Exceptions from the first step are raised by the constructor.
    """

    __slots__ = ("_coro", "_result", "_yielded", "done")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        try:
            self._yielded = coro.send(None)
        except StopIteration as stop:
            self._result: T = stop.value
            self.done = True
        else:
            self.done = False

    def result(self) -> T:
        assert self.done, "the coroutine is suspended: await it"
        return self._result

    def __await__(self) -> Generator[Any, Any, T]:
        if self.done:
            return self._result
        # A hand-written `yield from`: pass what the coroutine waits on to the running task, and
        # the task's answer (a value or an exception such as cancellation) back into it.
        yielded = self._yielded
        while True:
            try:
                try:
                    sent = yield yielded
                except BaseException as exc:  # forwarded into the coroutine, not handled here
                    yielded = self._coro.throw(exc)
                else:
                    yielded = self._coro.send(sent)
            except StopIteration as stop:
                self.done = True
                self._result = stop.value
                return self._result
