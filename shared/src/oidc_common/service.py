"""The application factory every service starts from, and its life cycle.

Connections are opened and closed with the aiohttp application lifecycle and stored under
typed keys; nothing connects at import time. A service adds its own routes, cleanup contexts
and broker subscribers on top of what this returns.

Graceful shutdown (`run`), built on aiohttp's own (the `AppRunner` and `TCPSite` that
`web.run_app` is made of, and their `cleanup` with `shutdown_timeout`):

1. SIGTERM: `/readyz` answers 503 at once; the process keeps serving for
   `SHUTDOWN_DRAIN_SECONDS`, so a load balancer polling readiness (Kubernetes) takes it out
   of rotation before it stops listening. Every answer given meanwhile carries
   `Connection: close`, so a proxy keeping connections alive (the nginx gateway) drops them
   one by one after a complete answer, not by finding them closed under a new request.
2. The listening socket closes (a proxy's new connections are refused, which it retries on
   another replica even for a POST), and connections accepted in the last instant get
   `ACCEPT_SETTLE_SECONDS` to deliver their request. (This is why `run` does not call
   `web.run_app`, which gives no hold of its site: its cleanup closes the listener and the
   connections in the same breath, and a connection accepted just before, whose request
   had not arrived yet, then ignores that request and holds it for the whole grace period,
   until the proxy answers 502.)
3. aiohttp's graceful cleanup: idle connections close, in-flight requests finish within
   `SHUTDOWN_GRACE_SECONDS`; then the cleanup contexts run in reverse order of
   registration: each service flushes what it holds (registration: the batched inserts and
   the client events; tenant-settings: one last outbox pass), bounded by what remains of
   the grace period (`Shutdown.remaining`), then the broker channels and connection, Redis
   and MongoDB are closed. The process exits 0.

A second SIGTERM skips the rest of the drain; SIGINT (Ctrl-C) skips it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import uvloop
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from .broker import Broker
from .config import Settings
from .errors import error_middleware
from .health import Check, health_routes, prometheus_text
from .logs import request_id_middleware
from .metrics import RequestMetrics
from .mongo import Document, ensure_indexes, open_client, ping
from .redis_client import open_redis
from .request_bodies import HANDLER_ARGS, close_after_unreadable_body, content_coding_middleware
from .tenancy import TenantDirectory, tenant_middleware

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MONGO_CLIENT: web.AppKey[AsyncMongoClient[Document]] = web.AppKey("mongo_client")
DB: web.AppKey[AsyncDatabase[Document]] = web.AppKey("db")
REDIS: web.AppKey[Redis] = web.AppKey("redis")
BROKER = web.AppKey("broker", Broker)
TENANTS = web.AppKey("tenants", TenantDirectory)
METRICS = web.AppKey("metrics", RequestMetrics)


class Shutdown:
    """Where this process stands in its shutdown (all times in seconds, monotonic clock).

    `draining` turns true at SIGTERM (or when the server stops, whichever comes first) and
    stays true; `deadline` is set when aiohttp begins closing connections (the listener is
    closed by then): the end of the grace period that in-flight requests and the flushes
    after them share.
    """

    def __init__(self, drain_seconds: float, grace_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self.grace_seconds = grace_seconds
        self.draining = False
        self.signalled_at: float | None = None
        self.deadline: float | None = None

    def begin_drain(self) -> bool:
        """Enter the drain; True the first time only."""
        if self.draining:
            return False
        self.draining = True
        self.signalled_at = time.monotonic()
        return True

    def begin_stop(self) -> None:
        """Connections are being closed: the grace period starts now."""
        self.draining = True
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace_seconds

    def remaining(self, floor: float = 1.0) -> float:
        """Seconds left of the grace period, at least `floor` (a flush that finds the grace
        spent by slow requests still gets a short chance), the whole period before it began."""
        if self.deadline is None:
            return max(floor, self.grace_seconds)
        return max(floor, self.deadline - time.monotonic())


SHUTDOWN = web.AppKey("shutdown", Shutdown)

# Registration bodies are small JSON documents; anything larger is refused before parsing.
DEFAULT_MAX_BODY = 64 * 1024
# Seconds between closing the listening socket and closing connections (module docstring).
ACCEPT_SETTLE_SECONDS = 0.25


async def _ensure_indexes_forever(db: AsyncDatabase[Document], collections: list[str]) -> None:
    # The database may be down at start-up; the service still starts (and reports not ready).
    delay = 0.5
    while True:
        try:
            await ensure_indexes(db, collections)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("index creation failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def create_service_app(
    settings: Settings,
    owned_collections: Iterable[str] = (),
    *,
    client_max_size: int = DEFAULT_MAX_BODY,
    outer_middlewares: Sequence[Middleware] = (),
) -> web.Application:
    """A service app with the shared middlewares, resources and health endpoints.

    `outer_middlewares` run before error rendering and tenant resolution (e.g. CORS, which
    must decorate error answers and answer preflights for any host).
    """
    metrics = RequestMetrics(settings.service_name)
    app = web.Application(
        client_max_size=client_max_size,
        handler_args=HANDLER_ARGS,
        middlewares=[
            request_id_middleware(settings.access_log),
            metrics.middleware(),
            *outer_middlewares,
            content_coding_middleware,
            error_middleware,
            tenant_middleware(lambda: app[TENANTS], settings.trusted_proxies),
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[SHUTDOWN] = Shutdown(settings.shutdown_drain_seconds, settings.shutdown_grace_seconds)
    app.cleanup_ctx.append(_connections(settings, list(owned_collections)))
    app.on_response_prepare.append(_close_while_draining)
    app.on_response_prepare.append(close_after_unreadable_body)
    app.on_shutdown.append(_stop_accepting)
    app.add_routes(
        health_routes(
            lambda: _readiness_checks(app),
            lambda: prometheus_text(metrics.registry),
            draining=lambda: app[SHUTDOWN].draining,
        )
    )
    return app


async def _close_while_draining(request: web.Request, response: web.StreamResponse) -> None:
    # `Connection: close`: the proxy does not reuse this connection, so it never sends a
    # request on a connection this process is about to close. The header is set by hand:
    # aiohttp computed its own headers before this hook, `force_close` alone would close
    # the connection without saying so.
    if request.app[SHUTDOWN].draining:
        response.force_close()
        response.headers[hdrs.CONNECTION] = "close"


async def _stop_accepting(app: web.Application) -> None:
    # aiohttp's on_shutdown: the listening socket is closed, idle connections too; what
    # follows is bounded by the grace period.
    shutdown = app[SHUTDOWN]
    shutdown.begin_stop()
    log.info("not accepting; finishing in-flight requests", extra=_timing(shutdown))


def _timing(shutdown: Shutdown) -> dict[str, float]:
    if shutdown.signalled_at is None:
        return {"grace_seconds": shutdown.grace_seconds}
    return {
        "seconds_since_sigterm": round(time.monotonic() - shutdown.signalled_at, 3),
        "grace_seconds": shutdown.grace_seconds,
    }


def _connections(
    settings: Settings, collections: list[str]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context opening MongoDB, Redis and RabbitMQ (and creating the indexes of
    `collections` in the background) at start-up, and closing them at shutdown."""

    async def connections(app: web.Application) -> AsyncIterator[None]:
        client = open_client(settings.mongodb_url)
        db = client[settings.mongodb_database]
        redis = open_redis(settings.redis_url)
        broker = Broker(settings.rabbitmq_url, settings.events_exchange)
        app[MONGO_CLIENT] = client
        app[DB] = db
        app[REDIS] = redis
        app[BROKER] = broker
        app[TENANTS] = TenantDirectory(db)
        indexes = asyncio.create_task(_ensure_indexes_forever(db, collections))
        broker.start()
        yield
        indexes.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await indexes
        # The services' own cleanups (registered after this one) ran first: nothing is left
        # to publish or write. Closing cannot fail the exit.
        await broker.close(timeout=app[SHUTDOWN].remaining())
        with contextlib.suppress(Exception):
            await redis.aclose()
        with contextlib.suppress(Exception):
            await client.close()

    return connections


def _readiness_checks(app: web.Application) -> dict[str, Check]:
    """What `/readyz` asks: is each backing service reachable from this process?"""

    async def mongo_up() -> bool:
        await ping(app[DB])
        return True

    async def redis_up() -> bool:
        return bool(await app[REDIS].ping())

    async def rabbitmq_up() -> bool:
        return app[BROKER].is_connected

    return {"mongodb": mongo_up, "redis": redis_up, "rabbitmq": rabbitmq_up}


async def _freeze_startup_objects(app: web.Application) -> None:
    # Everything allocated at start-up (modules, clients, routes) lives as long as the
    # process; moving it out of the collector's reach keeps full collections short, and
    # with them the latency tail under load.
    gc.collect()
    gc.freeze()


async def _until_stopped(shutdown: Shutdown) -> None:
    """Return once the process should stop accepting: `drain_seconds` after SIGTERM, at
    once after a second SIGTERM or a SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_sigterm() -> None:
        if shutdown.begin_drain():
            log.info("SIGTERM: draining (not ready)", extra={"seconds": shutdown.drain_seconds})
            loop.call_later(shutdown.drain_seconds, stop.set)
        else:
            log.info("SIGTERM again: stopping without waiting for the drain")
            stop.set()

    def on_sigint() -> None:
        shutdown.begin_drain()
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)


async def _serve(app: web.Application, settings: Settings) -> None:
    # What web.run_app does, with a hold of the site to stop it first (module docstring).
    runner = web.AppRunner(
        app,
        access_log=None,
        # In-flight requests get the grace period; the flushes after them what is left of it.
        shutdown_timeout=settings.shutdown_grace_seconds,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.bind_host, settings.port)
        await site.start()
        log.info("listening", extra={"host": settings.bind_host, "port": settings.port})
        await _until_stopped(app[SHUTDOWN])
        await site.stop()
        await asyncio.sleep(ACCEPT_SETTLE_SECONDS)
    finally:
        await runner.cleanup()


def run(app: web.Application, settings: Settings) -> None:
    """Serve `app` until SIGTERM or SIGINT, then shut down gracefully (module docstring);
    returns normally (exit status 0) once everything is flushed and closed."""
    app.on_startup.append(_freeze_startup_objects)
    # uvloop: the same asyncio API on libuv, with less CPU per socket event (every request
    # is several: the client's, and the database's, Redis's and the broker's replies).
    uvloop.run(_serve(app, settings))
    log.info("shut down", extra=_timing(app[SHUTDOWN]))
