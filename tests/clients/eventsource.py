"""npm's `eventsource` as a third-party client of the service, run by Node from the pinned package
in this folder (`npm ci` here, which `make test` runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@dataclass
class NodeEventSource:
    """One `follow.mjs` process following `url`; its lines are collected as they come."""

    url: str
    count: int
    seconds: float
    lines: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> NodeEventSource:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "eventsource").is_dir():
            pytest.fail("npm's eventsource is missing: `make test` installs it (npm ci in tests/clients)")
        self.process = subprocess.Popen(
            [node, str(HERE / "follow.mjs"), self.url, str(self.count), str(self.seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    @property
    def opened(self) -> int:
        return sum(1 for line in self.lines if line["kind"] == "open")

    @property
    def events(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == "event"]

    def wait(self) -> int:
        """Waits for the client to end; its exit status (0: it got `count` events)."""
        assert self.process is not None and self._reader is not None
        status = self.process.wait(self.seconds + 10)
        self._reader.join(5)
        return status

    def stop(self) -> None:
        """Ends the client if it still runs, and closes its pipe."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
