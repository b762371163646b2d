"""CORS for the registration endpoints, so browser-based clients can register themselves.

No cookies are involved (registration is open, configuration uses a bearer token), so any
origin may call, without credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

CORS_PREFIX = "/oidc/register"
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSE_HEADERS = "Retry-After, X-Request-ID, WWW-Authenticate"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _applies(path: str) -> bool:
    return path == CORS_PREFIX or path.startswith(CORS_PREFIX + "/")


def _decorate(response: web.StreamResponse) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS


def cors_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _applies(request.path):
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            preflight = web.Response(status=204)
            _decorate(preflight)
            preflight.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            preflight.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            preflight.headers["Access-Control-Max-Age"] = "600"
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _decorate(exc)
            raise
        _decorate(response)
        return response

    return middleware
