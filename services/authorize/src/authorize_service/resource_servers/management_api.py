"""`/api/v2/resource-servers`: the tenant's APIs, in the Auth0 Management API's shape.

Scopes `create:resource_servers`, `read:resource_servers`, `delete:resource_servers`.
The tenant's Management API is listed as Auth0 lists its own: `is_system: true`, with its
real audience (the tenant's issuer + `api/v2/`) as `identifier`; it can be read but neither
deleted nor shadowed by an API created with that identifier.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from oidc_common.errors import ManagementApiError, json_response
from oidc_common.management_api import MANAGEMENT_API
from oidc_common.management_auth import requires_scope
from oidc_common.management_requests import (
    bool_member,
    bool_query,
    collection_routes,
    int_member,
    int_query,
    invalid_body,
    paged_body,
    read_json_object,
    reject_unknown_members,
    require_members,
    string_member,
    wrong_type,
)
from oidc_common.service import DB, SETTINGS
from oidc_common.tenancy import ORIGIN, TENANT, Origin, split_host

from .repository import (
    MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
    SIGNING_ALG,
    DuplicateIdentifierError,
    ResourceServer,
    ResourceServers,
)

MAX_PER_PAGE = 100
MAX_IDENTIFIER_LENGTH = 600
MAX_NAME_LENGTH = 200
MAX_SCOPES = 1000
MAX_SCOPE_LENGTH = 280
MAX_DESCRIPTION_LENGTH = 500
CREATE_MEMBERS = (
    "identifier",
    "name",
    "scopes",
    "signing_alg",
    "allow_offline_access",
    "token_lifetime",
    "skip_consent_for_verifiable_first_party_clients",
)
SCOPE_MEMBERS = ("value", "description")
# RFC 6749 §3.3 scope-token: 1*NQCHAR; a scope is one token of a space-separated `scope`.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Scopes OpenID Connect gives their own meaning at /authorize; an API defining them would make
# a requested scope ambiguous.
RESERVED_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})


def resource_server_view(
    server: ResourceServer, origin: Origin, default_lifetime: int
) -> dict[str, Any]:
    """Auth0's resource-server object. The Management API shows its audience (this tenant's
    issuer + `api/v2/`) as `identifier`, as Auth0 shows its own system API."""
    identifier = origin.management_audience if server.is_system else server.identifier
    return {
        "id": server.id,
        "name": server.name,
        "is_system": server.is_system,
        "identifier": identifier,
        "scopes": [{"value": value, "description": text} for value, text in server.scopes.items()],
        "signing_alg": server.signing_alg,
        "allow_offline_access": server.allow_offline_access,
        "skip_consent_for_verifiable_first_party_clients": (
            server.skip_consent_for_verifiable_first_party_clients
        ),
        "token_lifetime": server.token_lifetime or default_lifetime,
    }


def _view(request: web.Request, server: ResourceServer) -> dict[str, Any]:
    return resource_server_view(server, request[ORIGIN], request.app[SETTINGS].access_token_ttl)


def _not_found() -> ManagementApiError:
    return ManagementApiError(
        404, "The resource server does not exist", "inexistent_resource_server"
    )


def _names_management_api(identifier: str, request: web.Request) -> bool:
    """True for the Management API's internal key, and for any URL of this tenant's host whose
    path is `/api/v2/` (its audience, whatever scheme or port the tenant is reached by)."""
    if identifier == MANAGEMENT_API:
        return True
    try:
        url = urllib.parse.urlsplit(identifier)
        host = url.hostname
    except ValueError:
        return False
    hosts = {request[TENANT].domain, split_host(request[ORIGIN].host)[0]}
    return host in hosts and url.path.rstrip("/") == "/api/v2"


def _identifier(body: Mapping[str, Any], request: web.Request) -> str:
    identifier = string_member(body, "identifier", max_length=MAX_IDENTIFIER_LENGTH)
    assert identifier is not None  # required, checked by the caller
    if identifier != identifier.strip():
        raise invalid_body(
            "Payload validation error: identifier must not begin or end with whitespace."
        )
    if _names_management_api(identifier, request):
        raise invalid_body(
            "Payload validation error: identifier names this tenant's Management API."
        )
    return identifier


def _name(body: Mapping[str, Any], identifier: str) -> str:
    name = string_member(body, "name", max_length=MAX_NAME_LENGTH)
    if name is None:
        return identifier[:MAX_NAME_LENGTH]  # Auth0 names an unnamed API after its identifier
    if "<" in name or ">" in name or not name.strip():
        raise invalid_body(
            "Payload validation error: name must contain a visible character and no < or >."
        )
    return name


def _scope_list(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("scopes", [])
    if not isinstance(raw, list):
        raise wrong_type("scopes", "array", raw)
    if len(raw) > MAX_SCOPES:
        raise invalid_body(f"Payload validation error: at most {MAX_SCOPES} scopes.")
    scopes: dict[str, str] = {}
    for index, item in enumerate(raw):
        where = f"scopes[{index}]"
        if not isinstance(item, dict):
            raise wrong_type(where, "object", item)
        reject_unknown_members(item, SCOPE_MEMBERS)
        require_members(item, ("value",))
        value = string_member(item, "value", max_length=MAX_SCOPE_LENGTH)
        description = string_member(item, "description", min_length=0, max_length=500)
        assert value is not None
        if not _SCOPE_TOKEN.fullmatch(value):
            raise invalid_body(
                f"Payload validation error: {where}.value must be printable ASCII without "
                'spaces, " or \\ (an RFC 6749 scope token).'
            )
        if value in RESERVED_SCOPES:
            raise invalid_body(
                f"Payload validation error: {where}.value {value!r} is an OpenID Connect scope."
            )
        if value in scopes:
            raise invalid_body(f"Payload validation error: scope {value!r} is defined twice.")
        scopes[value] = description or ""
    return list(scopes.items())


@requires_scope("create:resource_servers")
async def create_resource_server(request: web.Request) -> web.Response:
    """`POST /api/v2/resource-servers`: 201 with the API; 400 for a malformed body, an
    identifier that names the Management API, or another `signing_alg` than RS256; 409 when
    the identifier is taken."""
    body = await read_json_object(request)
    reject_unknown_members(body, CREATE_MEMBERS)
    require_members(body, ("identifier",))
    identifier = _identifier(body, request)
    name = _name(body, identifier)
    scopes = _scope_list(body)
    signing_alg = string_member(body, "signing_alg", max_length=10)
    if signing_alg not in (None, SIGNING_ALG):
        raise invalid_body(
            f"Payload validation error: 'No enum match for: \"{signing_alg}\"' on property "
            f"signing_alg (only {SIGNING_ALG} is supported)."
        )
    lifetime = int_member(body, "token_lifetime", MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME)
    offline = bool_member(body, "allow_offline_access")
    skip_consent = bool_member(body, "skip_consent_for_verifiable_first_party_clients")
    try:
        server = await ResourceServers(request.app[DB]).create(
            request[TENANT].id,
            identifier=identifier,
            name=name,
            scopes=scopes,
            allow_offline_access=bool(offline),
            token_lifetime=lifetime,
            skip_consent_for_verifiable_first_party_clients=bool(skip_consent),
        )
    except DuplicateIdentifierError as exc:
        raise ManagementApiError(
            409, "A resource server with the same identifier already exists", "conflict"
        ) from exc
    return json_response(_view(request, server), status=201)


@requires_scope("read:resource_servers")
async def list_resource_servers(request: web.Request) -> web.Response:
    """`GET /api/v2/resource-servers`: a page of APIs (the Management API first, as a system
    API), as an array or, with `include_totals=true`, Auth0's envelope."""
    page = int_query(request, "page", 0, 10_000)
    per_page = int_query(request, "per_page", 50, MAX_PER_PAGE, minimum=1)
    include_totals = bool_query(request, "include_totals") or False
    servers, total = await ResourceServers(request.app[DB]).list(request[TENANT].id, page, per_page)
    views = [_view(request, server) for server in servers]
    return json_response(
        paged_body("resource_servers", views, page, per_page, total, include_totals)
    )


async def _found(request: web.Request) -> ResourceServer:
    # Auth0 takes the id or the identifier (audience) in the path.
    key = request.match_info["id"]
    if key == MANAGEMENT_API:
        raise _not_found()  # an internal key, not an audience
    if key == request[ORIGIN].management_audience:
        key = MANAGEMENT_API
    server = await ResourceServers(request.app[DB]).get(request[TENANT].id, key)
    if server is None:
        raise _not_found()
    return server


@requires_scope("read:resource_servers")
async def get_resource_server(request: web.Request) -> web.Response:
    """`GET /api/v2/resource-servers/{id}` (id or identifier): the API, or 404."""
    return json_response(_view(request, await _found(request)))


@requires_scope("delete:resource_servers")
async def delete_resource_server(request: web.Request) -> web.Response:
    """`DELETE /api/v2/resource-servers/{id}`: 204, with the client grants on it; 400 for the
    Management API (a system API); 404 for an unknown one."""
    server = await _found(request)
    if server.is_system:
        raise ManagementApiError(
            400,
            "The Management API is a system resource server and cannot be deleted",
            "operation_not_supported",
        )
    if not await ResourceServers(request.app[DB]).delete(request[TENANT].id, server):
        raise _not_found()
    return web.Response(status=204)


def resource_server_routes() -> list[web.RouteDef]:
    """The `/api/v2/resource-servers` routes, for the authorize service's application."""
    handlers = {
        "create": create_resource_server,
        "list": list_resource_servers,
        "get": get_resource_server,
        "delete": delete_resource_server,
    }
    # `.+`: an identifier given in place of the id may be a URL, slashes and all.
    return collection_routes("/api/v2/resource-servers", "id:.+", handlers)
