"""The line protocol between the driver and its child processes: one JSON object per line."""

from __future__ import annotations

import json
import sys
from typing import Any

Message = dict[str, Any]


def reply(message: Message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def log(who: str, text: str) -> None:
    print(f"[{who}] {text}", file=sys.stderr, flush=True)
