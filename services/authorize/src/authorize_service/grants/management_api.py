"""`/api/v2/grants`: the tenant owner's view of what users allowed third-party clients, in
the Auth0 Management API's shape.

`GET` lists (`user_id`, `client_id`, `audience`, `page`, `per_page`, `include_totals`; scope
`read:grants`); `DELETE /{id}` takes one back and `DELETE ?user_id=` all of a user's (scope
`delete:grants`), each with the user's tokens for the client (`revoking`). A grant of sign-in
alone shows the tenant's `/userinfo` URL as its audience, as Auth0 does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.errors import ManagementApiError, json_response
from oidc_common.management_auth import requires_scope
from oidc_common.management_requests import bool_query, int_query, invalid_query, paged_body
from oidc_common.tenancy import ORIGIN, TENANT

from ..resources import GRANTS
from ..tokens.issuance import userinfo_audience
from .repository import SIGN_IN_ONLY, Grant, GrantQuery
from .revoking import take_back

MAX_PER_PAGE = 100
MAX_PAGE = 1000
MAX_FILTER_LENGTH = 2000


def grant_view(grant: Grant, issuer: str) -> dict[str, Any]:
    """Auth0's grant: `id`, `clientID`, `user_id`, `audience`, `scope` (an array)."""
    return {
        "id": grant.id,
        "clientID": grant.client_id,
        "user_id": grant.user_id,
        "audience": grant.audience if grant.audience is not None else userinfo_audience(issuer),
        "scope": list(grant.scopes),
    }


def _filter(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise invalid_query(f"'{name}' must be given at most once")
    value = values[0] if values else None
    if value is None:
        return None
    if not value or len(value) > MAX_FILTER_LENGTH or not value.isprintable():
        raise invalid_query(f"'{name}' must be a non-empty printable string")
    return value


@requires_scope("read:grants")
async def list_grants(request: web.Request) -> web.Response:
    page = int_query(request, "page", 0, MAX_PAGE)
    per_page = int_query(request, "per_page", 50, MAX_PER_PAGE, minimum=1)
    include_totals = bool_query(request, "include_totals") or False
    issuer = request[ORIGIN].issuer
    audience = _filter(request, "audience")
    if audience == userinfo_audience(issuer):
        audience = SIGN_IN_ONLY
    query = GrantQuery(_filter(request, "user_id"), _filter(request, "client_id"), audience)
    grants, total = await request.app[GRANTS].page(request[TENANT].id, query, page, per_page)
    views = [grant_view(grant, issuer) for grant in grants]
    return json_response(paged_body("grants", views, page, per_page, total, include_totals))


@requires_scope("delete:grants")
async def delete_grant(request: web.Request) -> web.Response:
    """`DELETE /api/v2/grants/{id}`: 204; 404 `inexistent_grant` for an unknown id."""
    grant = await request.app[GRANTS].get(request[TENANT].id, request.match_info["grant_id"])
    if grant is None:
        raise ManagementApiError(404, "The grant does not exist.", "inexistent_grant")
    await take_back(request, grant)
    return web.Response(status=204)


@requires_scope("delete:grants")
async def delete_user_grants(request: web.Request) -> web.Response:
    """`DELETE /api/v2/grants?user_id=…`: every grant of the user, 204 (none is not an error)."""
    user_id = _filter(request, "user_id")
    if user_id is None:
        raise invalid_query("'user_id' is required")
    for grant in await request.app[GRANTS].of_user(request[TENANT].id, user_id):
        await take_back(request, grant)
    return web.Response(status=204)


def grants_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v2/grants", list_grants, allow_head=False),
        web.delete("/api/v2/grants", delete_user_grants),
        web.delete("/api/v2/grants/{grant_id}", delete_grant),
    ]
