"""The drain's arithmetic: how many streams have ended at each moment of the window, and the jitter."""

from __future__ import annotations

import itertools

from sse_service.drain import RETRY_JITTER, farewell_retry_ms, slice_end


def test_streams_end_evenly_over_the_window_and_all_by_its_end() -> None:
    ended = [slice_end(100, t / 10, 10.0) for t in range(0, 101, 5)]
    assert ended[0] == 0 and ended[-1] == 100
    steps = [b - a for a, b in itertools.pairwise(ended)]
    assert max(steps) - min(steps) <= 1


def test_a_lone_stream_ends_at_the_end_of_the_window_not_the_start() -> None:
    assert slice_end(1, 0.1, 10.0) == 0
    assert slice_end(1, 10.0, 10.0) == 1


def test_the_retry_hint_is_jittered_only_when_draining() -> None:
    assert farewell_retry_ms(3000, 0.0) == 3000
    hints = {farewell_retry_ms(3000, 10.0) for _ in range(200)}
    low, high = RETRY_JITTER
    assert len(hints) > 50
    assert min(hints) >= 3000 * low and max(hints) <= 3000 * high
