"""`GET /.well-known/jwks.json`: the tenant's public signing keys (RFC 7517 §5).

Published: the current key and previous keys still inside their window, so a token signed
before a rotation verifies until it expires. Only public members ever leave (keystore.py).
"""

from __future__ import annotations

from aiohttp import web

from oidc_common.errors import json_response
from oidc_common.tenancy import TENANT

from .resources import KEYSTORE

JWKS_HEADERS = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}


async def jwks(request: web.Request) -> web.Response:
    keys = await request.app[KEYSTORE].public_jwks(request[TENANT].id)
    return json_response({"keys": keys}, headers=JWKS_HEADERS)


def jwks_routes() -> list[web.RouteDef]:
    return [web.get("/.well-known/jwks.json", jwks)]
