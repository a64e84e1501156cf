"""`--profile`: sample a process with py-spy while a scenario publishes, and summarise where time goes.

py-spy is optional (`pip install py-spy`); it runs outside the sampled process, so the profile costs
the service little. The raw output is collapsed stacks (`frame;frame;... count`), kept next to the
results for flame graphs; the summary ranks functions by self time (samples where they are on top).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(
    pid: int, seconds: float, out: Path, native: bool = False
) -> asyncio.subprocess.Process | None:
    """Starts py-spy on `pid` for `seconds`; None if py-spy is not installed.

    `native` adds C frames (uvloop, the interpreter, syscalls), at a higher sampling cost.
    """
    binary = py_spy()
    if binary is None:
        return None
    return await asyncio.create_subprocess_exec(
        binary,
        "record",
        *(["--native"] if native else ["--nonblocking"]),
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def top_self(collapsed: Path, limit: int = 15, by_line: bool = False) -> list[tuple[str, float]]:
    """Functions (or lines) by the share of samples in which they were the innermost frame."""
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frame = stack.rsplit(";", 1)[-1]
        counts[frame if by_line else _LINE.sub(")", frame)] += int(n)
        total += int(n)
    return [(frame, round(100 * n / total, 1)) for frame, n in counts.most_common(limit)] if total else []
