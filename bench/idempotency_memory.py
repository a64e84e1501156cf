"""What remembering idempotency keys costs Redis: one channel, many events published with keys.

    python -m bench.idempotency_memory [--events 20000]

Starts a redis-server of its own and publishes `--events` events on one channel through the site's
Lua step (devstack/publishing.py), each with its own key as the outbox sends them, then reports the
memory of the channel's key hash and sorted set (MEMORY USAGE, all samples) and per event published.
Before the count bound, that grew by about 262 bytes per event for SSE_IDEMPOTENCY_SECONDS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

from devstack.processes import free_port
from devstack.publishing import REMEMBERED_KEYS, LuaPublisher
from devstack.services import KEY_PREFIX, RedisServer
from sse_service.protocol import RedisNames

CHANNEL = "public.bench-idempotency"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idempotency_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=20000, help="events published (default 20000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-idempotency-") as tmp:
        server = RedisServer(Path(tmp), free_port()).start()
        try:
            with server.client() as client:
                publisher = LuaPublisher(client)
                for n in range(args.events):
                    publisher.publish(CHANNEL, str(n), idempotency_key=uuid.uuid4().hex)
                names = RedisNames(KEY_PREFIX)
                keys = (names.idempotency_key(CHANNEL), names.idempotency_times_key(CHANNEL))
                used = sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)
                remembered = int(client.hlen(keys[0]))
        finally:
            server.stop()
    print(f"{args.events} events with keys on one channel: {remembered} keys kept (bound {REMEMBERED_KEYS})")
    print(f"idempotency memory: {used} bytes, {used / args.events:.1f} bytes per event published")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
