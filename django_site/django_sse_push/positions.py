"""Event ids as the SSE service reads them (docs/wire-contract.md): the few lines a page needs to
start a stream at given positions, written here because the site does not import the service.

`<first channel>/<ms>-<seq>`, then, when other channels have positions, `,~<tag>` and
`,<index>:<ms>-<seq>` for each, by its index in the stream's channel list; the tag is the 32-bit
FNV-1a of the channel names joined by commas, in eight hex digits. 32 channels of 128 characters
then fit nginx's 8 KB request line, where naming each channel did not (a 414).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def channel_list_tag(channels: Sequence[str]) -> str:
    digest = 0x811C9DC5
    for byte in ",".join(channels).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{digest:08x}"


def event_id(channels: Sequence[str], positions: Mapping[str, str]) -> str:
    """One id for `positions` (channel to `<ms>-<seq>`) on a stream of `channels`; "" for none."""
    known = [channel for channel in channels if channel in positions]
    if not known:
        return ""
    own = known[0]
    others = "".join(
        f",{index}:{positions[channel]}"
        for index, channel in enumerate(channels)
        if channel != own and channel in positions
    )
    tag = f",~{channel_list_tag(channels)}" if others else ""
    return f"{own}/{positions[own]}{tag}{others}"
