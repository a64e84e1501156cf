"""The ASGI application: routes, and a lifespan that owns the Redis clients and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._shutdown import server_exiting
from .exceptions import Refused
from .gate import Gate
from .hub import Hub
from .metrics import metrics, metrics_registry
from .policies import RewindError, rewind_counts
from .presence import Roster, report_presence
from .protocol import PositionError, Positions, RedisNames, is_valid_channel, parse_positions
from .redis_clients import REDIS_ERRORS, CommandClient, command_client, topology
from .response import HubEventSourceResponse
from .revocation import Revocations, tickets_in
from .settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The uvicorn factory (`--factory sse_service.app:create_app`); reads settings from the env."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise SystemExit(f"sse_service: invalid configuration: {exc}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        client = command_client(settings)
        revocations = Revocations(settings.key_prefix, tickets_in(client, settings.key_prefix))
        hub = Hub(
            settings, client, topology(settings, client), control=revocations, server_exiting=server_exiting
        )
        roster = Roster(settings.policies)
        gate = Gate(settings, client, revocations, hub, roster)
        names = RedisNames(settings.key_prefix)
        await _announce_policies(client, names, settings)
        tasks = [
            asyncio.create_task(hub.run(), name="the hub's subscriptions"),
            asyncio.create_task(
                report_presence(hub, roster, client, names, settings.presence_seconds), name="presence"
            ),
        ]
        for task in tasks:
            task.add_done_callback(_stop_if_failed)
        # Every open stream is a few dozen long-lived objects that the cyclic collector rescans at each
        # collection: while 5000 clients connected, that was a third of the CPU (make bench). Freeze
        # what start-up made and collect less often; memory use did not change.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        try:
            state = {"hub": hub, "redis": client, "settings": settings, "gate": gate}
            yield {**state, "metrics": metrics_registry(hub)}
        finally:
            hub.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

    app = Starlette(
        routes=[
            Route("/sse/", stream, methods=["GET"]),
            Route("/sse/{channel}", stream, methods=["GET"]),
            Route("/healthz", liveness, methods=["GET"]),
            Route("/readyz", readiness, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # No redirects adding or dropping a trailing slash: a 307 built from the client's Host header.
    app.router.redirect_slashes = False
    if not settings.cors_origins:
        return StreamsFirst(app)
    # Outside StreamsFirst, as streams bypass Starlette's middleware: Starlette's own CORS rules, for
    # streams and preflights alike. Only when configured: behind nginx, one origin needs none of it.
    return CORSMiddleware(
        StreamsFirst(app),
        allow_origins=settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["Last-Event-ID"],
        allow_credentials=True,
    )


class StreamsFirst:
    """The ASGI app: a stream request goes straight to `stream`, everything else through Starlette.

    A stream's request stays suspended in every coroutine it went through for as long as the stream
    lives. Through Starlette's error and exception middlewares, its router and route, that is a dozen
    frames and closures: 4 KB a stream. They add nothing a stream uses: `stream` answers every error
    itself, and an unexpected one still reaches uvicorn, which logs it and answers 500 as Starlette's
    middleware would. Other methods on these paths still get Starlette's 405.
    """

    def __init__(self, app: Starlette) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path.startswith("/sse/") and "/" not in path[5:]:
                scope["path_params"] = {"channel": path[5:]} if path[5:] else {}
                response = await stream(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


async def _announce_policies(client: CommandClient, names: RedisNames, settings: Settings) -> None:
    """Writes the policy table in force where Django's deploy check compares it with its own; a
    Redis that cannot be reached now is only logged: streams wait for it anyway."""
    try:
        await client.set(names.policies_key(), settings.policies.canonical())
    except REDIS_ERRORS as exc:
        logger.warning("policy table not written to Redis: %s", exc)


def _stop_if_failed(task: asyncio.Task[None]) -> None:
    """A process whose subscription or presence loop died must not look alive: log it and stop, so
    clients reconnect elsewhere and the orchestrator restarts it."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.critical("%s failed, stopping the service", task.get_name(), exc_info=exc)
        os.kill(os.getpid(), signal.SIGTERM)


# What nginx accepts as a request line (`large_client_header_buffers 4 8k`): the service answers a
# longer one as nginx would, whether or not nginx is in front.
MAX_REQUEST_TARGET = 8192


async def stream(request: Request) -> Response | ASGIApp:
    scope = request.scope
    # The lifespan's state as the dict it is: `request.state` builds a State object at each use.
    state = scope["state"]
    settings: Settings = state["settings"]
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"]) + 1
    if target > MAX_REQUEST_TARGET:
        return PlainTextResponse(
            f"URL too long: {target} bytes, at most {MAX_REQUEST_TARGET}; send the position in the "
            "Last-Event-ID header, not in lastEventId\n",
            414,
        )
    names = list(request.query_params.getlist("channel"))
    if "channel" in request.path_params:
        names.insert(0, request.path_params["channel"])
    channels = tuple(dict.fromkeys(names))
    if not channels:
        return PlainTextResponse("No channel given: use /sse/<channel> or /sse/?channel=a&channel=b\n", 400)
    invalid = [name for name in channels if not is_valid_channel(name)]
    if invalid:
        return PlainTextResponse(
            f"Invalid channel name {invalid[0][:130]!r}: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit\n",
            400,
        )
    if len(channels) > settings.max_channels_per_connection:
        return PlainTextResponse(
            f"Too many channels: {len(channels)} given, at most "
            f"{settings.max_channels_per_connection} per connection\n",
            429,
        )
    try:
        position = resume_position(request, channels)
    except PositionError as exc:
        return PlainTextResponse(f"Invalid lastEventId: {exc}\n", 400)
    rewind: dict[str, int] = {}
    if "rewind" in request.query_params:
        try:
            rewind = rewind_counts(request.query_params["rewind"], channels, settings.policies)
        except RewindError as exc:
            return PlainTextResponse(f"Invalid rewind: {exc}\n", 400)
    hub: Hub = state["hub"]
    gate: Gate = state["gate"]
    try:
        admission = await gate.admit(request, channels)
    except Refused as refusal:
        return PlainTextResponse(refusal.message, refusal.status)
    return HubEventSourceResponse(hub, channels, settings, admission, position, rewind)


def resume_position(request: Request, channels: tuple[str, ...]) -> Positions | None:
    """Where a reconnecting client left off: the `Last-Event-ID` header, else `lastEventId`.

    The header wins: a browser reconnecting by itself resends the URL it first opened, stale
    `lastEventId` included, with the newest id it saw in the header. A malformed header is ignored
    (browsers send it unasked, and an error status would stop their EventSource for good); a
    malformed parameter is the caller's mistake (400).
    """
    header = request.headers.get("last-event-id")
    if header:
        try:
            return parse_positions(header, channels)
        except PositionError as exc:
            client = request.client.host if request.client else "-"
            logger.info("ignoring Last-Event-ID from %s: %s", client, exc)
    if "lastEventId" in request.query_params:
        return parse_positions(request.query_params["lastEventId"], channels)
    return None


async def liveness(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readiness(request: Request) -> Response:
    """Ready when both the subscription and a command round trip to Redis work, and not once told
    to stop: a draining process takes no new streams."""
    if server_exiting():
        return PlainTextResponse("shutting down\n", 503)
    hub: Hub = request.state.hub
    client: CommandClient = request.state.redis
    if not hub.connected:
        return PlainTextResponse("redis subscription down\n", 503)
    try:
        await asyncio.wait_for(client.ping(), timeout=1.0)
    except (TimeoutError, *REDIS_ERRORS) as exc:
        return PlainTextResponse(f"redis unreachable: {exc}\n", 503)
    return PlainTextResponse("ready\n")
