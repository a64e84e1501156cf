"""Writing events to the listeners of their channels, encoded once for all of them.

Each message from Redis becomes its `Frame` once; a batch's consecutive frames of one channel join
into a `Run`, framed once as an HTTP chunk that every listener of the channel shares
(`Subscriber.push_run`). Runs of a channel with a write delay (`SSE_WRITE_DELAY_MS`, or its prefix's
`write_delay_ms`) wait in `HeldRuns` first, so a busy channel's events reach each stream as one write.
Nothing here waits for a client: a connection that cannot take a write now is its `Subscriber`'s
business.
"""

from __future__ import annotations

import logging
import time

from .channels import ChannelState
from .held import HeldRuns
from .protocol import EnvelopeError, Frame, StreamId, event_frame, parse_envelope, parse_stream_id
from .settings import Settings
from .stats import HubStats, latency_histogram
from .subscriber import Run, Subscriber

logger = logging.getLogger(__name__)

# Envelope bytes around the data: `v1`, the id, the event type and three line breaks.
_ENVELOPE_OVERHEAD = 3 + 31 + 64 + 3


class Fanout:
    """The hub's way out: frames, runs, the write delay and the writes to listeners."""

    def __init__(self, settings: Settings, channels: dict[str, ChannelState], stats: HubStats) -> None:
        self._max_message_bytes = settings.max_payload_bytes + _ENVELOPE_OVERHEAD
        # The hub's channels, by name: whom a run goes to, and with which write delay.
        self._channels = channels
        self._stats = stats
        self.latency = latency_histogram()
        self._delays_writes = settings.policies.delays_writes(settings.write_delay_ms)
        self._held = HeldRuns(self._write_held)

    def frame_into(self, runs: list[Run], state: ChannelState, payload: bytes, timed: bool = True) -> None:
        """Encodes one message into its frame, once for all listeners, unless it is bad or a duplicate."""
        stats = self._stats
        stats.messages_received += 1
        try:
            if len(payload) > self._max_message_bytes:
                raise EnvelopeError(f"{len(payload)} bytes, over the limit")
            envelope = parse_envelope(payload)
            stream_id = parse_stream_id(envelope.id)
        except (EnvelopeError, ValueError) as exc:
            stats.messages_rejected += 1
            logger.warning("rejected a message on %r: %s", state.name, exc)
            return
        if not state.advance(stream_id):
            stats.duplicates_dropped += 1  # delivered already, from the stream after a reconnect
            return
        if timed:
            self._observe(stream_id)
        append(runs, event_frame(state.name, stream_id, envelope))

    def deliver(self, runs: list[Run]) -> None:
        """Live runs: written now, or after their channel's write delay together with those that follow."""
        if not self._delays_writes:
            self.write(runs)
            return
        now: list[Run] = []
        for run in runs:
            state = self._channels.get(run.channel)
            if state is None or not state.write_delay:
                now.append(run)
            else:
                self._held.hold(run, state.write_delay)
        self.write(now)

    def release_held(self) -> None:
        """Writes the runs waiting out their delay now: what comes next (a fill's page) follows them."""
        self._held.release_all()

    def write(self, runs: list[Run]) -> None:
        """Each run to every listener of its channel: one shared chunk per run where a listener has
        only that run to take, else one write per listener with all of its runs."""
        if not runs:
            return
        stats = self._stats
        if len(runs) == 1:
            run = runs[0]
            state = self._channels.get(run.channel)
            listeners = state.listeners if state is not None else ()
            framed = run.chunk
            for subscriber in listeners:
                subscriber.push_run(run, framed)
            stats.events_delivered += len(run.frames) * len(listeners)
            stats.bytes_sent += run.weight * len(listeners)
            return
        per_subscriber: dict[Subscriber, list[Run]] = {}
        for run in runs:
            state = self._channels.get(run.channel)
            listeners = state.listeners if state is not None else set()
            for subscriber in listeners:
                per_subscriber.setdefault(subscriber, []).append(run)
            stats.events_delivered += len(run.frames) * len(listeners)
            stats.bytes_sent += run.weight * len(listeners)
        for subscriber, subscriber_runs in per_subscriber.items():
            subscriber.push(subscriber_runs)

    def _write_held(self, runs: list[Run]) -> None:
        # Behind a write delay an event's latency is observed as it is written, the wait included.
        for run in runs:
            for frame in run.frames:
                self._observe(frame.id)
        self.write(runs)

    def _observe(self, stream_id: StreamId) -> None:
        # The id's first part is Redis's clock when the event was published.
        self.latency.observe(max(0.0, time.time() - stream_id[0] / 1000))


def append(runs: list[Run], frame: Frame) -> None:
    """Consecutive frames of one channel are joined into one run, written as one chunk per listener."""
    if runs and runs[-1].channel == frame.channel:
        runs[-1].add(frame)
    else:
        runs.append(Run(frame.channel, frame))
