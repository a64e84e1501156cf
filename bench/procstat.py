"""Memory and CPU of processes from /proc: what the servers cost, measured from outside them."""

from __future__ import annotations

import os
from collections.abc import Iterable

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name may hold spaces and parentheses; the fields after its last ')' do not.
    return raw[raw.rindex(b")") + 2 :].split()


def with_descendants(pids: Iterable[int]) -> list[int]:
    """`pids` and every process below them (nginx's master -> its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return sorted(found)


def rss_kb(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def cpu_seconds(pids: Iterable[int], system_only: bool = False) -> float:
    """User plus system time (or system time alone: the kernel's share, syscalls and networking).

    A process that has exited counts as zero, so take deltas while it is alive.
    """
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            ticks += int(fields[12]) + (0 if system_only else int(fields[11]))
        except (OSError, ValueError, IndexError):
            continue
    return ticks / _TICKS


def _machine_fields() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, over all cores: shows load that is not ours."""
    fields = _machine_fields()
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / _TICKS


def machine_irq_seconds() -> float:
    """The machine's interrupt and softirq time: on loopback, mostly the TCP stack delivering our
    own packets, which the kernel charges to no process (so it lands in `other`)."""
    fields = _machine_fields()
    return (fields[5] + fields[6]) / _TICKS


def write_syscalls(pids: Iterable[int]) -> int:
    """`syscw` of /proc/<pid>/io, summed: write-family system calls (write, writev, sendto...), a
    count that does not move with the machine's speed or load."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                for line in f:
                    if line.startswith("syscw:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def context_switches(pids: Iterable[int]) -> int:
    """Voluntary plus involuntary context switches of every thread of the processes."""
    total = 0
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            total += int(line.split()[1])
            except OSError:
                continue
    return total
