"""Runs held for their channel's write delay, written together when it ends.

A channel's events may wait up to its delay (SSE_WRITE_DELAY_MS, or its prefix's `write_delay_ms`)
so that a stream gets them in one write: fewer writes, less CPU per delivery, at up to the delay in
latency. One timer per distinct delay, not per channel: a process has a few delays and many channels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .subscriber import Run


class HeldRuns:
    def __init__(self, write: Callable[[list[Run]], None]) -> None:
        self._write = write
        # By delay, one run per channel: what arrives while a channel waits joins its run, in order.
        self._pending: dict[float, dict[str, Run]] = {}
        self._timers: dict[float, asyncio.TimerHandle] = {}

    def hold(self, run: Run, delay: float) -> None:
        pending = self._pending.setdefault(delay, {})
        held = pending.get(run.channel)
        if held is None:
            pending[run.channel] = run
        else:
            held.extend(run)
        if delay not in self._timers:
            self._timers[delay] = asyncio.get_running_loop().call_later(delay, self.release, delay)

    def release(self, delay: float) -> None:
        """Writes the runs waiting out `delay`."""
        timer = self._timers.pop(delay, None)
        if timer is not None:
            timer.cancel()
        pending = self._pending.pop(delay, None)
        if pending:
            self._write(list(pending.values()))

    def release_all(self) -> None:
        """Writes everything held: before a gap fill, whose events must come after these."""
        for delay in list(self._pending):
            self.release(delay)
