"""`manage.py publish CHANNEL JSON [--event TYPE]`: publish one event, print its id."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_sse_push.exceptions import PublishError
from django_sse_push.publish import publish


class Command(BaseCommand):
    help = "Publish one event to a channel and print its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("channel", help="channel name, e.g. demo")
        parser.add_argument("data", metavar="JSON", help='event data as JSON text, e.g. {"a":1}')
        parser.add_argument("--event", metavar="TYPE", help="event type (default: message)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = json.loads(options["data"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"JSON argument is not valid JSON: {exc}") from exc
        try:
            event_id = publish(options["channel"], data, event=options["event"])
        except PublishError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(event_id)
