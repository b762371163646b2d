"""The authorization code grant (RFC 6749 §4.1.3): redeeming a code `/authorize` issued.

The code must be unused, unexpired, issued to this client, for this `redirect_uri`, and
proven with the PKCE verifier of its challenge (RFC 7636 §4.6). A second redemption is
refused and revokes what the first one issued (RFC 6749 §4.1.2, RFC 9700 §4.5).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.tenancy import TENANT

from ...authorization import pkce
from ...resources import CODES, REVOCATIONS, USERS
from ...targets import check_same_target
from ..client_auth import AuthenticatedClient
from ..issuance import UserGrant, issue_tokens, new_grant_id
from ..request import TokenRequest
from ..revocation import revoke_grant

GRANT_TYPE = "authorization_code"


def _invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


async def authorization_code(
    request: web.Request, client: AuthenticatedClient, params: TokenRequest
) -> dict[str, Any]:
    code = params.require("code")
    grant_id = new_grant_id()
    redemption = await request.app[CODES].redeem(code, grant_id)
    if redemption.replayed:
        if redemption.grant_id is not None:
            await revoke_grant(request, redemption.grant_id)
        raise _invalid_grant(
            "The authorization code was already used; the tokens issued for it are revoked"
        )
    grant = redemption.grant
    tenant_id = request[TENANT].id
    if grant is None:
        raise _invalid_grant("Invalid or expired authorization code")
    if grant.tenant_id != tenant_id or grant.client_id != client.client_id:
        raise _invalid_grant("The authorization code was not issued to this client")
    # RFC 6749 §4.1.3: required, and identical, since the authorization request had one.
    if params.get("redirect_uri") != grant.redirect_uri:
        raise _invalid_grant("redirect_uri does not match the authorization request")
    if client.is_public and grant.code_challenge is None:
        raise _invalid_grant("A public client's code must be bound to a PKCE challenge")
    if not pkce.verify(params.get("code_verifier"), grant.code_challenge):
        raise _invalid_grant("PKCE verification failed (code_verifier)")
    check_same_target(params.get("resource"), grant.audience)
    if await request.app[REVOCATIONS].taken_back_since(
        tenant_id, grant.user_id, client.client_id, grant.issued_at
    ):
        raise _invalid_grant("The user took this application's access back")
    user = await request.app[USERS].get(tenant_id, grant.user_id)
    if user is None:
        raise _invalid_grant("The user no longer exists")
    return await issue_tokens(
        request,
        UserGrant.from_code(grant, user, grant_id),
        access_token=True,
        id_token=True,
        refresh_token="refresh_token" in client.grant_types,
    )
