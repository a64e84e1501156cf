"""`manage.py sse_relay [--metrics-port N]`: send the outbox's pending events until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS
from prometheus_client import start_http_server

from django_sse_push.conf import push_settings
from django_sse_push.relay import Relay, RelayMetrics

logger = logging.getLogger("django_sse_push.relay")


class Command(BaseCommand):
    help = "Publish the events the outbox holds, oldest first, for as long as it runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="the outbox's database alias")
        parser.add_argument(
            "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: none)"
        )
        parser.add_argument("--metrics-address", default="127.0.0.1", help="address for --metrics-port")

    def handle(self, *args: Any, **options: Any) -> None:
        configured = push_settings()
        metrics = RelayMetrics()
        relay = Relay(
            metrics,
            using=options["database"],
            batch_size=configured.OUTBOX_BATCH_SIZE,
            poll_seconds=configured.OUTBOX_POLL_SECONDS,
        )
        if options["metrics_port"]:
            start_http_server(options["metrics_port"], options["metrics_address"], registry=metrics.registry)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: relay.stopping.set())
        logger.info("outbox relay started on database %r", options["database"])
        relay.run()
        logger.info("outbox relay stopped")
