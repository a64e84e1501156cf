"""`manage.py sse_relay [--database ALIAS]... [--metrics-port N]`: send the outbox's pending events
until SIGTERM or Ctrl-C, from every database that holds an outbox, one thread each."""

from __future__ import annotations

import signal
import threading
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, router
from prometheus_client import start_http_server

from django_sse_push.conf import push_settings
from django_sse_push.models import OutboxEvent
from django_sse_push.relay import Relay, RelayMetrics


def outbox_databases() -> list[str]:
    """The aliases `migrate` gives an outbox table: every database the routers allow it on."""
    return [alias for alias in settings.DATABASES if router.allow_migrate_model(alias, OutboxEvent)]


class Command(BaseCommand):
    help = "Publish the events the outbox holds, channel by channel, for as long as it runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="an outbox's database alias, repeatable (default: every database the routers "
            "allow the outbox on)",
        )
        parser.add_argument(
            "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: none)"
        )
        parser.add_argument("--metrics-address", default="127.0.0.1", help="address for --metrics-port")

    def handle(self, *args: Any, **options: Any) -> None:
        databases: list[str] = options["databases"] or outbox_databases()
        unknown = [alias for alias in databases if alias not in settings.DATABASES]
        if unknown or not databases:
            raise CommandError(f"no such database in DATABASES: {', '.join(unknown) or '(none allowed)'}")
        configured = push_settings()
        metrics = RelayMetrics()
        stopping = threading.Event()
        relays = [
            Relay(
                metrics,
                using=alias,
                batch_size=configured.OUTBOX_BATCH_SIZE,
                poll_seconds=configured.OUTBOX_POLL_SECONDS,
                stopping=stopping,
            )
            for alias in databases
        ]
        if options["metrics_port"]:
            start_http_server(options["metrics_port"], options["metrics_address"], registry=metrics.registry)
        previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in _STOP_SIGNALS}
        self.stdout.write(self._start_line(databases, options))
        try:
            threads = [threading.Thread(target=relay.run, name=f"relay-{relay.using}") for relay in relays]
            for thread in threads:
                thread.start()
            # Joined with a timeout so that this thread keeps handling signals.
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(0.2)
        finally:
            stopping.set()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("outbox relay stopped")

    def _start_line(self, databases: list[str], options: dict[str, Any]) -> str:
        """What runserver's start lines are to a site: where it reads, where it sends, where to look."""
        configured = push_settings()
        where = ", ".join(f"{alias!r} ({connections[alias].vendor})" for alias in databases)
        redis = ", ".join(configured.REDIS_CLUSTER_NODES) or _without_password(configured.REDIS_URL)
        metrics = (
            f"metrics on http://{options['metrics_address']}:{options['metrics_port']}/metrics"
            if options["metrics_port"]
            else "no metrics (--metrics-port)"
        )
        return (
            f"Outbox relay sending the outbox of database {where} to Redis at {redis}: up to "
            f"{configured.OUTBOX_BATCH_SIZE} events a pass, looking every "
            f"{configured.OUTBOX_POLL_SECONDS:g} s when idle; {metrics}.\nQuit with CONTROL-C."
        )


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
