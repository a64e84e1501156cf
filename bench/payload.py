"""The benchmark's event payload, shared by the publisher and the load client.

Each payload is the JSON text `{"t":<time.time_ns()>,"s":<seq>}`: the send time gives the
publish-to-receive latency, and the sequence number, counted per channel from 0 for the measured
run (-1 for warm-up events), gives loss per connection as gaps.
"""

from __future__ import annotations

import re

WARM_UP_SEQ = -1
# As it appears in the stream: the service copies the JSON text after `data: ` unchanged.
EVENT_DATA = re.compile(rb'data: \{"t":(\d+),"s":(-?\d+)\}')


def encode(sent_ns: int, seq: int) -> str:
    return f'{{"t":{sent_ns},"s":{seq}}}'


def channel_names(count: int) -> list[str]:
    return ["bench"] if count == 1 else [f"bench-{i}" for i in range(count)]
