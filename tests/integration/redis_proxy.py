"""A TCP proxy in front of redis-server that holds back one reply (or one request) for a while: a Redis
that answers late, or a command that reaches it late."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from devstack.processes import free_port


class DelayingProxy:
    """Forwards 127.0.0.1:`port` to Redis on `upstream`. The first reply holding `marker` (with
    `requests`, the first command sent holding it), and everything after it on that connection, so
    order is kept, is delivered `delay` seconds late."""

    def __init__(self, upstream: int, marker: bytes, delay: float, requests: bool = False) -> None:
        self.upstream = upstream
        self.marker = marker
        self.delay = delay
        self.requests = requests
        self.port = free_port()
        self.delayed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> DelayingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, self.requests), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, not self.requests), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                if held and self.marker in data and not self.delayed.is_set():
                    self.delayed.set()
                    time.sleep(self.delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()
