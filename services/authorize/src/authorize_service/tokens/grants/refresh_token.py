"""The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2).

Each refresh token works once and is replaced; reusing one revokes its whole family and the
access tokens of the sign-in. A request may narrow the scope, never widen it (RFC 6749 §6).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.tenancy import TENANT

from ...oidc_scopes import OPENID
from ...resources import REFRESH_TOKENS, REVOCATIONS, USERS
from ...scopes import narrow_scope
from ...targets import check_same_target
from ..client_auth import AuthenticatedClient
from ..issuance import UserGrant, issue_tokens
from ..refresh_tokens import RefreshGrant
from ..request import TokenRequest
from ..revocation import revoke_grant

GRANT_TYPE = "refresh_token"


async def refresh_token(
    request: web.Request, client: AuthenticatedClient, params: TokenRequest
) -> dict[str, Any]:
    token = params.require("refresh_token")
    tenant_id = request[TENANT].id
    requested_scope, requested_resource = params.get("scope"), params.get("resource")

    def within_grant(family: RefreshGrant) -> None:
        check_same_target(requested_resource, family.audience)
        narrow_scope(family.scopes, requested_scope)

    rotation = await request.app[REFRESH_TOKENS].use(
        token, tenant_id, client.client_id, within_grant
    )
    if rotation.reused_family is not None:
        await revoke_grant(request, rotation.reused_family)
        raise OAuthError(
            "invalid_grant", "The refresh token was already used; its sign-in is revoked"
        )
    family = rotation.grant
    if family is None:
        raise OAuthError("invalid_grant", "Invalid, expired or revoked refresh token")
    if await request.app[REVOCATIONS].is_revoked_grant(family.family_id):
        await request.app[REFRESH_TOKENS].revoke_family(family.family_id)
        raise OAuthError("invalid_grant", "Invalid, expired or revoked refresh token")
    scopes = narrow_scope(family.scopes, requested_scope)
    user = await request.app[USERS].get(tenant_id, family.user_id)
    if user is None:
        await revoke_grant(request, family.family_id)
        raise OAuthError("invalid_grant", "The user no longer exists")
    return await issue_tokens(
        request,
        UserGrant.from_refresh(family, user, scopes),
        access_token=True,
        id_token=OPENID in scopes,
        refresh_token=True,
    )
