"""The publisher process: publishes through the project's own Lua step, as Django does, or to nchan's
HTTP publisher (one keep-alive connection, one POST in flight), the peer's own way in, or to
django-eventstream's Redis channel as its `send_event` publishes with `EVENTSTREAM_REDIS` set.

`python -m bench.publisher TARGET_JSON CHANNEL...` (TARGET_JSON: `{"redis_port": P}` or
`{"nchan_port": P, "path_prefix": "/pub/"}` or `{"eventstream_redis_port": P}`), then one JSON
command per line on stdin:
`{"cmd": "warm"}` publishes one warm-up event per channel; `{"cmd": "run", "rate": R, "duration": D}`
publishes R msg/s round-robin over the channels for D seconds (R = 0: back to back, one call in
flight, as fast as the path allows) and answers how many went to each channel.
A process of its own, so its CPU is neither the client's nor the server's.
"""

from __future__ import annotations

import http.client
import json
import resource
import sys
import time
from typing import Any

import redis

from devstack.publishing import LuaPublisher

from . import payload
from ._jsonlines import Message, log, reply


class PublishError(RuntimeError):
    """nchan refused a message or the connection to it broke."""


class NchanPublisher:
    """POSTs each message to nchan's publisher location, which answers 201 or 202 once it is queued."""

    def __init__(self, port: int, path_prefix: str) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._prefix = path_prefix

    def publish(self, channel: str, data: str) -> None:
        try:
            self._connection.request("POST", self._prefix + channel, body=data.encode())
            response = self._connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            raise PublishError(repr(exc)) from None
        if response.status not in (201, 202):
            raise PublishError(f"nchan answered {response.status}")


class EventstreamPublisher:
    """What django-eventstream's `send_event(channel, "message", text, json_encode=False)` does with
    `EVENTSTREAM_REDIS` set and no storage: one PUBLISH on `events_channel`, which every daphne
    process's listener hears (django_eventstream/eventstream.py, 5.3.4)."""

    def __init__(self, port: int) -> None:
        self._redis = redis.Redis(port=port, socket_timeout=10)

    def publish(self, channel: str, data: str) -> None:
        message = {"channel": channel, "event_type": "message", "data": data, "pub_id": None}
        self._redis.publish("events_channel", json.dumps(message))


# What a publish may fail with: counted, and the run goes on.
FAILURES = (redis.RedisError, PublishError)


def _sink(target: dict[str, Any]) -> LuaPublisher | NchanPublisher | EventstreamPublisher:
    if "redis_port" in target:
        return LuaPublisher(redis.Redis(port=target["redis_port"], socket_timeout=10))
    if "eventstream_redis_port" in target:
        return EventstreamPublisher(target["eventstream_redis_port"])
    return NchanPublisher(target["nchan_port"], target["path_prefix"])


class Publisher:
    def __init__(self, target: dict[str, Any], channels: list[str]) -> None:
        self._sink = _sink(target)
        self._channels = channels

    def publish(self, index: int, seq: int) -> None:
        self._sink.publish(self._channels[index], payload.encode(time.time_ns(), seq))

    def warm(self) -> Message:
        for index in range(len(self._channels)):
            self.publish(index, payload.WARM_UP_SEQ)
        return {"ok": True}

    def run(self, rate: float, duration: float) -> Message:
        n = len(self._channels)
        seqs = [0] * n
        errors = 0
        first_error = ""
        behind = 0.0
        cpu0 = _cpu()
        start = time.monotonic()
        first_ns = time.time_ns()
        k = 0
        while True:
            now = time.monotonic()
            if rate > 0:
                due = start + k / rate
                if due > now:
                    time.sleep(due - now)
                    now = time.monotonic()
                else:
                    behind = max(behind, now - due)
            if now - start >= duration:
                break
            index = k % n
            try:
                self.publish(index, seqs[index])
                seqs[index] += 1
            except FAILURES as exc:  # counted and reported; the run stays bounded by time
                errors += 1
                first_error = first_error or repr(exc)
            k += 1
        last_ns = time.time_ns()
        return {
            "published": dict(zip(self._channels, seqs, strict=True)),
            "published_total": sum(seqs),
            "t_first_ns": first_ns,
            "t_last_ns": last_ns,
            "pub_s": (last_ns - first_ns) / 1e9,
            "pub_max_behind_s": round(behind, 4),
            "pub_errors": errors,
            "pub_first_error": first_error,
            "pub_cpu_s": round(_cpu() - cpu0, 3),
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> None:
    publisher = Publisher(json.loads(argv[0]), argv[1:])
    while line := sys.stdin.readline():
        command: dict[str, Any] = json.loads(line)
        if command["cmd"] == "quit":
            reply({"ok": True})
            break
        try:
            if command["cmd"] == "warm":
                reply(publisher.warm())
            elif command["cmd"] == "run":
                reply(publisher.run(float(command["rate"]), float(command["duration"])))
            else:
                reply({"error": f"unknown command {command['cmd']!r}"})
        except FAILURES as exc:
            log("publisher", f"{command['cmd']} failed: {exc!r}")
            reply({"error": repr(exc)})


if __name__ == "__main__":
    main(sys.argv[1:])
