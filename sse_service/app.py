"""The ASGI application: routes, and a lifespan that owns the Redis clients and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .exceptions import Refused
from .gate import Gate
from .hub import Hub
from .protocol import is_valid_channel
from .response import HubEventSourceResponse
from .revocation import Revocations
from .settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """The uvicorn factory (`--factory sse_service.app:create_app`); reads settings from the env."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise SystemExit(f"sse_service: invalid configuration: {exc}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        revocations = Revocations(settings.key_prefix)
        hub = Hub(settings, control=revocations)
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        gate = Gate(settings, client, revocations)
        tasks = [asyncio.create_task(hub.run()), asyncio.create_task(hub.keepalive())]
        try:
            yield {"hub": hub, "redis": client, "settings": settings, "gate": gate}
        finally:
            hub.close_all("server shutdown")
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
        ],
        lifespan=lifespan,
    )
    # No redirects adding or dropping a trailing slash: a 307 built from the client's Host header.
    app.router.redirect_slashes = False
    return app


async def stream(request: Request) -> Response | ASGIApp:
    settings: Settings = request.state.settings
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
    gate: Gate = request.state.gate
    try:
        admission = await gate.admit(request, channels)
    except Refused as refusal:
        return PlainTextResponse(refusal.message, refusal.status)
    return admission.guard(HubEventSourceResponse(request.state.hub, channels, settings, admission.client))


async def liveness(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readiness(request: Request) -> Response:
    """Ready when both the subscription and a command round trip to Redis work."""
    hub: Hub = request.state.hub
    client: redis.Redis = request.state.redis
    if not hub.connected:
        return PlainTextResponse("redis subscription down\n", 503)
    try:
        await asyncio.wait_for(client.ping(), timeout=1.0)
    except (TimeoutError, redis.RedisError, OSError) as exc:
        return PlainTextResponse(f"redis unreachable: {exc}\n", 503)
    return PlainTextResponse("ready\n")
