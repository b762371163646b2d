"""`/healthz` (process alive), `/readyz` (dependencies reachable and not shutting down),
`/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .errors import json_response

Check = Callable[[], Awaitable[bool]]


async def _run_check(check: Check, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout)
    except asyncio.CancelledError:
        raise
    except Exception:
        return False


def health_routes(
    checks: Callable[[], dict[str, Check]],
    metrics_text: Callable[[], bytes],
    timeout: float = 2.0,
    draining: Callable[[], bool] = lambda: False,
) -> list[web.RouteDef]:
    """The three routes. `/readyz` answers 503 `{"status": "draining"}` as soon as
    `draining()` is true (the process got SIGTERM), before asking any dependency, so a load
    balancer stops sending to it while it still serves; `/healthz` stays 200 until exit."""

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if draining():
            return json_response(
                {"status": "draining"}, status=503, headers={"Cache-Control": "no-store"}
            )
        named = checks()
        results = await asyncio.gather(*(_run_check(c, timeout) for c in named.values()))
        status = {name: "up" if ok else "down" for name, ok in zip(named, results, strict=True)}
        ready = all(results)
        return json_response(
            {"status": "ready" if ready else "unavailable", "checks": status},
            status=200 if ready else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=metrics_text())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]


def prometheus_text(registry: object) -> bytes:
    return generate_latest(registry)  # type: ignore[arg-type]
