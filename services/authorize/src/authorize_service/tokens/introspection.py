"""`POST /oauth/introspect` (RFC 7662): whether a token is active, for the resource servers
(an MCP server included) and clients that ask.

The caller authenticates as a confidential client, as at the token endpoint (RFC 7662 §2.1
requires authentication; a public client cannot). A token is active only if all of these hold:

- it is one of this tenant's access tokens (signature, `iss`, `typ` at+jwt, `exp`) or one of
  the caller's refresh tokens, neither used, revoked nor expired;
- it was not revoked (`Revocations.is_revoked`: its sign-in, itself, or the user's access to
  the client), its client is still live and, for a user's token, the user still exists;
- the caller may see it: it is the client the token was issued to, or (an access token) the
  caller holds a client grant for one of the APIs in its `aud` (a resource server registered
  as a machine client).

Anything else is `{"active": false}` and nothing more (§2.2), so the answer never tells a
caller about a token it may not see. An active answer carries the token's own claims and
nothing the caller could not read from the token itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.claims import audiences
from oidc_common.errors import NO_STORE, OAuthError, json_response
from oidc_common.mongo import Collections
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..registered_clients import find_live_client
from ..resources import REVOCATIONS, USERS
from .access_tokens import client_subject
from .client_auth import AuthenticatedClient, authenticate
from .client_grants import resource_server_identifier
from .presented import PresentedAccessToken, presented_token
from .refresh_tokens import RefreshTokenState
from .request import read_token_request

INACTIVE = {"active": False}
# Members of an active answer copied from an access token (RFC 7662 §2.2).
_ACCESS_TOKEN_MEMBERS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")


async def _may_see(
    request: web.Request, caller: AuthenticatedClient, token: PresentedAccessToken
) -> bool:
    if token.client_id == caller.client_id:
        return True
    management = request[ORIGIN].management_audience
    identifiers = [
        identifier
        for audience in audiences(token.claims)
        if (identifier := resource_server_identifier(audience, management)) is not None
    ]
    if not identifiers:
        return False
    grant = await request.app[DB][Collections.CLIENT_GRANTS].find_one(
        {
            "tenant_id": request[TENANT].id,
            "client_id": caller.client_id,
            "audience": {"$in": identifiers},
        },
        {"_id": 1},
    )
    return grant is not None


async def _still_valid(request: web.Request, client_id: str | None, subject: str) -> bool:
    """The token's client is live and, for a user's token, the user exists."""
    tenant_id = request[TENANT].id
    if client_id is None or await find_live_client(request.app[DB], tenant_id, client_id) is None:
        return False
    if client_id is not None and subject == client_subject(client_id):
        return True
    return await request.app[USERS].get(tenant_id, subject) is not None


async def _access_token_answer(
    request: web.Request, caller: AuthenticatedClient, token: PresentedAccessToken
) -> dict[str, Any]:
    claims = token.claims
    if not await _may_see(request, caller, token):
        return INACTIVE
    if await request.app[REVOCATIONS].is_revoked(request[TENANT].id, claims):
        return INACTIVE
    if not await _still_valid(request, token.client_id, str(claims["sub"])):
        return INACTIVE
    answer: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in _ACCESS_TOKEN_MEMBERS if name in claims})
    return answer


async def _refresh_token_answer(request: web.Request, state: RefreshTokenState) -> dict[str, Any]:
    grant = state.grant
    if not state.active or await request.app[REVOCATIONS].is_revoked_grant(grant.family_id):
        return INACTIVE
    if not await _still_valid(request, grant.client_id, grant.user_id):
        return INACTIVE
    answer: dict[str, Any] = {
        "active": True,
        "scope": " ".join(grant.scopes),
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "iss": request[ORIGIN].issuer,
        "iat": int(state.issued_at.timestamp()),
        "exp": int(state.expires_at.timestamp()),
    }
    if grant.audience is not None:
        answer["aud"] = grant.audience
    return answer


async def introspection_endpoint(request: web.Request) -> web.Response:
    params = await read_token_request(request)
    caller = await authenticate(request, params)
    if caller.is_public:
        raise OAuthError(
            "invalid_client",
            "Token introspection requires client authentication (RFC 7662 §2.1)",
            status=401,
        )
    token = params.require("token")
    found = await presented_token(request, token, caller.client_id)
    answer: dict[str, Any] = INACTIVE
    if isinstance(found, PresentedAccessToken):
        answer = await _access_token_answer(request, caller, found)
    elif isinstance(found, RefreshTokenState):
        answer = await _refresh_token_answer(request, found)
    return json_response(answer, headers=NO_STORE)


def introspection_routes() -> list[web.RouteDef]:
    return [web.post("/oauth/introspect", introspection_endpoint)]
