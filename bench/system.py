"""What the runner needs of a system under test: the project (`servers.py`) or its peer (`nchan.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

from devstack.processes import Process


class System(Protocol):
    # `project` or `nchan`: the column a result goes in.
    name: ClassVar[str]
    # The process groups that are the server: their memory growth per stream and their CPU per
    # delivered event are the figures compared.
    memory_groups: ClassVar[tuple[str, ...]]
    # Streams are at `path_prefix + channel`; a stream is ready once `ready_marker` has arrived.
    path_prefix: ClassVar[str]
    ready_marker: ClassVar[str]
    run_dir: Path

    @property
    def port(self) -> int: ...

    def start(self) -> System: ...

    def stop(self) -> None: ...

    def publish_target(self) -> dict[str, Any]:
        """The publisher process's JSON argument: where and how to publish."""
        ...

    def pids(self) -> dict[str, list[int]]:
        """Process groups by name (`nginx` is its master plus the workers of the moment)."""
        ...

    def streams(self) -> dict[str, int]:
        """Open streams per SSE process, where the system can tell."""
        ...

    def service_log(self) -> str: ...


def started_pid(process: Process | None) -> int:
    if process is None:
        raise RuntimeError("server not started")
    return process.pid
