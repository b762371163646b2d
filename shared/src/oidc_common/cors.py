"""CORS for endpoints browsers call from other origins without cookies (Fetch standard §3.2).

Registration, the token endpoint, `/userinfo` and discovery are called by SPAs and native
apps' web views with bearer tokens or client credentials in the request, never cookies, so
any origin may call and no credentials mode is offered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cors_middleware(
    applies: Callable[[str], bool],
    *,
    allow_methods: str,
    allow_headers: str,
    expose_headers: str,
) -> Middleware:
    """A middleware answering preflights and decorating answers (errors included) for the
    paths `applies` accepts; placed outside error rendering so error bodies are readable."""

    def decorate(response: web.StreamResponse) -> None:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = expose_headers

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not applies(request.path):
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            preflight = web.Response(status=204)
            decorate(preflight)
            preflight.headers["Access-Control-Allow-Methods"] = allow_methods
            preflight.headers["Access-Control-Allow-Headers"] = allow_headers
            preflight.headers["Access-Control-Max-Age"] = "600"
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            decorate(exc)
            raise
        decorate(response)
        return response

    return middleware
