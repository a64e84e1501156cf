"""The driver's side of a child process (load client, publisher): JSON lines, every answer time-bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from ._jsonlines import Message
from .system import System


class ChildError(RuntimeError):
    """A child process died, answered with an error, or did not answer in time."""


class Child:
    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self._process = process

    @classmethod
    async def start(cls, name: str, module: str, args: list[str], log_path: Path) -> Child:
        with open(log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=1 << 22,
            )
        return cls(name, process)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def ask(self, command: Message, timeout: float) -> Message:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(command).encode() + b"\n")
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), timeout)
        except TimeoutError:
            raise ChildError(f"{self.name}: no answer to {command['cmd']!r} within {timeout:.0f}s") from None
        except ConnectionError as exc:
            raise ChildError(f"{self.name} is gone ({exc})") from None
        if not line:
            raise ChildError(f"{self.name} exited (code {await self._process.wait()}); see its log")
        answer: Message = json.loads(line)
        if "error" in answer:
            raise ChildError(f"{self.name}: {answer['error']}")
        return answer

    async def stop(self, command: Message, timeout: float = 10.0) -> None:
        """Asks the child to finish with `command`; kills it if it does not exit within `timeout`."""
        if self._process.returncode is not None:
            return
        try:
            await self.ask(command, timeout)
            await asyncio.wait_for(self._process.wait(), timeout)
        except (ChildError, TimeoutError):
            self._process.kill()
            await self._process.wait()


@contextlib.asynccontextmanager
async def load(
    servers: System, channels: list[str], logs: Path, **client_options: object
) -> AsyncIterator[tuple[Child, Child]]:
    """The load client following `channels` on `servers` (with `client_options`: how many per channel,
    how to connect and reconnect) and the publisher sending on them; both stopped on the way out."""
    config = {
        "host": "127.0.0.1",
        "port": servers.port,
        "path_prefix": servers.path_prefix,
        "ready_marker": servers.ready_marker,
        "channels": channels,
        **client_options,
    }
    client = await Child.start("client", "bench.client", [json.dumps(config)], logs / "client.log")
    try:
        target = json.dumps(servers.publish_target())
        publisher = await Child.start(
            "publisher", "bench.publisher", [target, *channels], logs / "publisher.log"
        )
        try:
            yield client, publisher
        finally:
            await publisher.stop({"cmd": "quit"})
    finally:
        await client.stop({"cmd": "close"})
