"""Background tasks that are neither lost nor silent.

The event loop keeps only a weak reference to a task, so a task nobody holds may vanish mid-flight,
and an exception in a task nobody awaits is reported only when it is garbage-collected, if ever.
`spawn` holds each task until it is done and logs how it failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(coro, name=getattr(coro, "__qualname__", None))
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=exc)
