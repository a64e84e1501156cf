from __future__ import annotations

import asyncio

import pytest

from sse_service._eager import EagerCoroutine


async def test_a_coroutine_that_need_not_wait_finishes_in_the_constructor() -> None:
    async def quick() -> int:
        return 5

    step = EagerCoroutine(quick())
    assert step.done
    assert step.result() == 5


async def test_a_coroutine_that_waits_is_finished_by_awaiting_it() -> None:
    ready = asyncio.Event()

    async def slow() -> int:
        await ready.wait()
        return 7

    step = EagerCoroutine(slow())
    assert not step.done
    asyncio.get_running_loop().call_soon(ready.set)
    assert await step == 7


async def test_exceptions_after_waiting_reach_the_awaiter() -> None:
    ready = asyncio.Event()

    async def failing() -> None:
        await ready.wait()
        raise KeyError("boom")

    step = EagerCoroutine(failing())
    ready.set()
    with pytest.raises(KeyError):
        await step


async def test_cancelling_the_awaiter_cancels_the_coroutine() -> None:
    cleaned_up = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    step = EagerCoroutine(forever())

    async def waiter() -> None:
        await step

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up == [True]
