"""The paced drain: after SIGTERM, a process ends its streams a slice at a time over
`SSE_DRAIN_SECONDS`, each told to come back after a jittered `retry:`.

Why. Every stream a replica ends reconnects, after its `retry:`, to the replicas left. Ended in the
same instant, a replica's thousands of browsers land on the survivors in the same second: a connect
storm, each reconnect an admission and a history read, so the survivors answer late and events to
the reconnected browsers wait seconds. Ended in even slices over the window, and each farewell's
`retry:` drawn at random around `SSE_RETRY_MS`, the reconnects arrive spread over the window.

What stays true meanwhile. uvicorn stops accepting connections when the signal comes (and `/readyz`
answers 503), so no new stream arrives; the hub keeps delivering to every stream not yet ended, and
each ended stream resumes from its Last-Event-ID elsewhere, so nothing is lost or repeated. Nothing
here runs per delivery: only a timer that wakes every `STEP_SECONDS` while the window lasts.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence

from ._tasks import spawn
from .ending import End
from .subscriber import Subscriber

# How often a slice is ended: reconnects are spread at this grain (and by the jittered `retry:`).
STEP_SECONDS = 0.1
# A drained stream's `retry:` is SSE_RETRY_MS times a factor drawn from this range: the mean wait
# stays the configured one, and streams ended in the same slice do not come back in the same instant.
RETRY_JITTER = (0.5, 1.5)


def end_streams(subscribers: Sequence[Subscriber], window: float) -> None:
    """Ends `subscribers`: all at once if `window` is 0, else in even slices over `window` seconds."""
    if window <= 0:
        for subscriber in subscribers:
            subscriber.close(End.SERVER_SHUTDOWN)
        return
    order = list(subscribers)
    random.shuffle(order)  # a slice mixes channels and clients, so no one channel's listeners go first
    spawn(_pace(order, window))


def slice_end(total: int, elapsed: float, window: float) -> int:
    """How many of `total` streams are to have ended `elapsed` seconds into the window."""
    if elapsed >= window:
        return total
    return min(total, math.floor(total * elapsed / window))


async def _pace(order: list[Subscriber], window: float) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = 0
    while done < len(order):
        await asyncio.sleep(STEP_SECONDS)
        upto = slice_end(len(order), loop.time() - started, window)
        for subscriber in order[done:upto]:
            if subscriber.end is None:
                subscriber.close(End.SERVER_SHUTDOWN)
        done = upto


def farewell_retry_ms(retry_ms: int, window: float) -> int:
    """The `retry:` a stream ended by shutdown is given: jittered when drained over a window."""
    if window <= 0:
        return retry_ms
    return max(1, round(retry_ms * random.uniform(*RETRY_JITTER)))
