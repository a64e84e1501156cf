"""The forms the app's settings must take, in one place for its system checks and for a project's
settings module that reads them from the environment (importable before Django is set up)."""

from __future__ import annotations

import re

REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_NODE_RE = re.compile(r"[^\s:]+:\d{1,5}")
# Braces are Redis Cluster hash tags; whitespace would split the names.
KEY_PREFIX_RE = re.compile(r"[^\s{}]+")
# A public prefix is the start of a channel name.
CHANNEL_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
