"""`python -m devstack run`: the whole stack on localhost until Ctrl-C (what `make run` calls)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

from .processes import StartError
from .services import REPO
from .stack import DEMO_POLICIES, Stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--port", type=int, default=8000, help="where nginx listens (default 8000)")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run", help="logs, database, sockets")
    options = parser.parse_args()

    shutil.rmtree(options.run_dir, ignore_errors=True)
    stack = Stack(options.run_dir, port=options.port, channel_policies=DEMO_POLICIES)
    # Explicit, because a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start()
    except StartError as exc:
        print(f"could not start the stack: {exc}", file=sys.stderr)
        return 1
    env_file = options.run_dir / "env"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack.django.env.items()))
    print(
        f"""
  The stack is up (logs in {options.run_dir}/):
    board    {stack.nginx.url}/board/  (the demo app; {stack.nginx.url}/ is the event console)
    admin    {stack.nginx.url}/admin/  (alice is staff: the "broadcast" action on board items)
    metrics  {stack.sse.url}/metrics   (Prometheus, on the SSE service only; nginx does not route it)
    relay    {stack.relay.metrics_url}  (the outbox relay's Prometheus metrics)
    site     {stack.nginx.url}/
    redis    {stack.redis.url}
    sse      {stack.sse.url}/readyz (direct; the public path is {stack.nginx.url}/sse/<channel>)

  Log in as alice or bob, password sse-demo, to post, publish and see your private channel.

  Publish an event the open page shows within a second:
    make publish DATA='{{"text": "hello"}}'
  or, by hand:
    . {env_file} && {sys.executable} django_site/manage.py publish public.demo '{{"text": "hello"}}'

  Ctrl-C stops everything.
""",
        flush=True,
    )
    try:
        while all(process.running for process in stack.processes()):
            time.sleep(0.5)
        crashed = [process.name for process in stack.processes() if not process.running]
        print(f"stopped: {', '.join(crashed)} exited; see its log in {options.run_dir}/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
