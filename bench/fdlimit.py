"""The descriptor limit: each stream holds one in the client and one in the server, so a scenario's
clients need as many in each process, plus a few spare."""

from __future__ import annotations

import resource

# What a process holds besides its streams: listening sockets, Redis connections, logs, epoll.
SPARE = 128


class LimitError(RuntimeError):
    """The machine's descriptor limit leaves no room for streams; the message says what to raise."""


def raise_fd_limit(needed: int) -> int:
    """Raises this process's RLIMIT_NOFILE, which the servers and clients it starts inherit, toward
    `needed`: the hard limit too where that is allowed (with CAP_SYS_RESOURCE), else the soft limit up
    to the hard one. Returns the soft limit now in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            pass
    soft = needed if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def streams_allowed(clients: int) -> int:
    """How many of `clients` streams one process may hold here, after raising the limit for them."""
    allowed = min(clients, raise_fd_limit(clients + SPARE) - SPARE)
    if allowed < 1:
        raise LimitError(f"the descriptor limit leaves no room for streams: raise `ulimit -n` above {SPARE}")
    return allowed
