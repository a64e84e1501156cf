"""Whether the server has been told to stop (SIGTERM, SIGINT), so the hub can end every stream at once.

uvicorn waits for open responses before it shuts the app's lifespan down, so a stream must learn of
the signal by itself. sse-starlette's `AppStatus` flag is set by its patch of uvicorn's exit handler,
which does not take when uvicorn binds its handler before the app is imported (`--factory`); then
the running server is found behind the signal handler, as sse-starlette's own watcher does.
"""

from __future__ import annotations

import signal

from sse_starlette.sse import AppStatus


def server_exiting() -> bool:
    if AppStatus.should_exit:
        return True
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))
