"""The application factory every service starts from.

Connections are opened and closed with the aiohttp application lifecycle and stored under
typed keys; nothing connects at import time. A service adds its own routes, cleanup contexts
and broker subscribers on top of what this returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from aiohttp import web
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
from .tenancy import TenantDirectory, tenant_middleware

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MONGO_CLIENT: web.AppKey[AsyncMongoClient[Document]] = web.AppKey("mongo_client")
DB: web.AppKey[AsyncDatabase[Document]] = web.AppKey("db")
REDIS: web.AppKey[Redis] = web.AppKey("redis")
BROKER = web.AppKey("broker", Broker)
TENANTS = web.AppKey("tenants", TenantDirectory)
METRICS = web.AppKey("metrics", RequestMetrics)

# Registration bodies are small JSON documents; anything larger is refused before parsing.
DEFAULT_MAX_BODY = 64 * 1024


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
        middlewares=[
            request_id_middleware(settings.access_log),
            metrics.middleware(),
            *outer_middlewares,
            error_middleware,
            tenant_middleware(lambda: app[TENANTS], settings.trusted_proxies),
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.cleanup_ctx.append(_connections(settings, list(owned_collections)))
    app.add_routes(
        health_routes(lambda: _readiness_checks(app), lambda: prometheus_text(metrics.registry))
    )
    return app


def _connections(
    settings: Settings, collections: list[str]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context opening MongoDB, Redis and RabbitMQ (and creating the indexes of
    `collections` in the background) at start-up, and closing them at shutdown."""

    async def connections(app: web.Application) -> AsyncIterator[None]:
        client = open_client(settings.mongodb_url)
        db = client[settings.mongodb_database]
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
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
        await broker.close()
        await redis.aclose()
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


def run(app: web.Application, settings: Settings) -> None:
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(
        app,
        host=settings.bind_host,
        port=settings.port,
        access_log=None,
        print=lambda *_: log.info(
            "listening", extra={"host": settings.bind_host, "port": settings.port}
        ),
    )
