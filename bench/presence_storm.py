"""Join/leave traffic when 1,000 listeners connect, then all reconnect at once.

`python -m bench.presence_storm [--listeners 1000] [--max-members 100]`: a redis-server and two SSE
replicas on this machine, a channel whose policy turns join/leave on, and `--listeners` logged-in
users (one ticket each) split over the replicas. It reports, for the first arrival and for a mass
reconnect within the grace, the `presence.*` events published (Redis stream entries) and the event
frames the replicas wrote (`sse_events_delivered`): each event reaches every listener, so without a
member limit the arrival costs listeners x joins, the square Centrifugo warns of.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.fdlimit import raise_fd_limit
from devstack import tickets
from devstack.processes import free_port
from devstack.replicas import sse_replicas
from devstack.services import RedisServer, SseService

CHANNEL = "public.room.storm"
# Reports every second: the grace within which a reconnect is neither a leave nor a join is 3 s.
# Listeners open in waves of this many, 0.1 s apart: all of them within a second, one presence
# report, yet without a thousand ticket reads at the same instant, which the service's Redis client
# refuses past its connections ("Too many connections": the stream is then listed as anonymous).
WAVE = 100
# The listeners' tasks, held so they are not collected while they run.
_running: set[asyncio.Task[None]] = set()
ENV = {"SSE_PRESENCE_SECONDS": "1", "SSE_MAX_CONNECTIONS_PER_ADDRESS": "100000"}


async def _listen(port: int, token: str, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /sse/{CHANNEL} HTTP/1.1\r\nHost: bench\r\nCookie: sse_ticket={token}\r\n\r\n".encode())
    drain = asyncio.create_task(_discard(reader))
    await stop.wait()
    drain.cancel()
    writer.close()


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _delivered(service: SseService) -> float:
    text = urllib.request.urlopen(f"{service.url}/metrics", timeout=5).read().decode()
    match = re.search(r"^sse_events_delivered(?:_total)? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


async def _phase(services: list[SseService], tokens: list[str], settle: float) -> asyncio.Event:
    stop = asyncio.Event()
    for index, token in enumerate(tokens):
        _running.add(asyncio.create_task(_listen(services[index % 2].port, token, stop)))
        if index % WAVE == WAVE - 1:
            await asyncio.sleep(0.1)
    await asyncio.sleep(settle)
    return stop


def measure(listeners: int, max_members: int, run_dir: Path) -> dict[str, object]:
    table = run_dir / "policies.json"
    table.write_text(
        json.dumps({CHANNEL: {"public": True, "join_leave": True, "join_leave_max_members": max_members}})
    )
    redis = RedisServer(run_dir, free_port()).start()
    services = sse_replicas(run_dir, redis.url, 2, env={**ENV, "SSE_CHANNEL_POLICIES": str(table)})
    try:
        for service in services:
            service.start()
        client = redis.client()
        tokens = [tickets.issue(client, [CHANNEL], user=str(n), name=f"user {n}") for n in range(listeners)]
        key = f"sse:{{{CHANNEL}}}:events"

        async def run() -> dict[str, object]:
            stop = await _phase(services, tokens, settle=8)
            arrival = (client.xlen(key), sum(_delivered(s) for s in services))
            stop.set()
            await asyncio.sleep(0.2)
            started = time.monotonic()
            stop = await _phase(services, tokens, settle=8)
            reconnect_seconds = time.monotonic() - started
            after = (client.xlen(key), sum(_delivered(s) for s in services))
            stop.set()
            return {
                "listeners": listeners,
                "join_leave_max_members": max_members,
                "arrival_events_published": arrival[0],
                "arrival_frames_delivered": int(arrival[1]),
                "reconnect_events_published": after[0] - arrival[0],
                "reconnect_frames_delivered": int(after[1] - arrival[1]),
                "reconnect_window_seconds": round(reconnect_seconds, 1),
            }

        return asyncio.run(run())
    finally:
        for service in services:
            service.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--max-members", type=int, default=100)
    args = parser.parse_args()
    raise_fd_limit(4 * args.listeners + 256)
    with tempfile.TemporaryDirectory(prefix="presence-storm-") as run_dir:
        print(json.dumps(measure(args.listeners, args.max_members, Path(run_dir))))


if __name__ == "__main__":
    main()
