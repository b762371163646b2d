"""`GET`/`POST /userinfo` (OIDC Core §5.3) with a bearer access token (RFC 6750 §2.1).

The token must be one of this tenant's RS256 access tokens (RFC 9068) whose audience includes
the tenant's userinfo URL (what `/authorize` and the token endpoint issue with `openid`),
with the `openid` scope, not revoked, for a user that still exists. Failures answer 401/403
with `WWW-Authenticate` (RFC 6750 §3).
"""

from __future__ import annotations

from aiohttp import web

from oidc_common.errors import NO_STORE, ManagementApiError, OAuthError, json_response
from oidc_common.management_auth import KEYS, bearer_token, granted_scopes, verify_access_token
from oidc_common.tenancy import ORIGIN, TENANT

from .oidc_scopes import OPENID, user_claims
from .resources import REVOCATIONS, USERS
from .tokens.issuance import userinfo_audience


def _invalid_token(description: str) -> OAuthError:
    return OAuthError(
        "invalid_token",
        description,
        status=401,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )


async def userinfo(request: web.Request) -> web.Response:
    origin, tenant_id = request[ORIGIN], request[TENANT].id
    try:
        claims = await verify_access_token(
            bearer_token(request),
            request.app[KEYS],
            tenant_id,
            origin.issuer,
            userinfo_audience(origin.issuer),
        )
    except ManagementApiError as exc:  # the same checks, answered in the OAuth format
        raise OAuthError(exc.error_code, exc.message, exc.status, exc.headers) from exc
    scopes = granted_scopes(claims)
    if OPENID not in scopes:
        raise OAuthError(
            "insufficient_scope",
            "The access token lacks the openid scope",
            status=403,
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'},
        )
    if await request.app[REVOCATIONS].is_revoked(tenant_id, claims):
        raise _invalid_token("Token revoked")
    user = await request.app[USERS].get(tenant_id, str(claims["sub"]))
    if user is None:
        raise _invalid_token("Unknown user")
    return json_response({"sub": user.user_id, **user_claims(user, scopes)}, headers=NO_STORE)


def userinfo_routes() -> list[web.RouteDef]:
    return [web.get("/userinfo", userinfo), web.post("/userinfo", userinfo)]
