"""`GET /openapi.yaml`: the service's OpenAPI 3.1 description.

The document is package data (`registration_service/openapi.yaml`), so it is found the same
way from the source tree and from an installed wheel. It is read once, when the route is made.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

OPENAPI_PATH = "/openapi.yaml"
OPENAPI_RESOURCE = "openapi.yaml"
CONTENT_TYPE = "application/yaml"


def openapi_document() -> bytes:
    """The packaged OpenAPI document, as bytes (UTF-8 YAML)."""
    package = __name__.rpartition(".")[0]
    return resources.files(package).joinpath(OPENAPI_RESOURCE).read_bytes()


def openapi_route() -> web.RouteDef:
    document = openapi_document()

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type=CONTENT_TYPE, charset="utf-8")

    return web.get(OPENAPI_PATH, openapi, allow_head=False)
