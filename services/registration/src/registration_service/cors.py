"""CORS for the registration endpoints, so browser-based clients can register themselves.

No cookies are involved (registration is open, configuration uses a bearer token), so any
origin may call, without credentials (`oidc_common.cors`).
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from oidc_common import cors

CORS_PREFIX = "/oidc/register"
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSE_HEADERS = "Retry-After, X-Request-ID, WWW-Authenticate"


def _applies(path: str) -> bool:
    return path == CORS_PREFIX or path.startswith(CORS_PREFIX + "/")


def cors_middleware() -> Middleware:
    """The shared CORS middleware for `/oidc/register` and `/oidc/register/{client_id}`."""
    return cors.cors_middleware(
        _applies,
        allow_methods=ALLOW_METHODS,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
    )
