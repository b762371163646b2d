"""`POST /oauth/revoke` (RFC 7009, Auth0's path), and revoking a sign-in wherever it happens.

The client authenticates as at the token endpoint (a public client names itself). Then:

- one of its refresh tokens: the whole sign-in is revoked, its family and every access token
  of it (§2.1: "SHOULD also invalidate all access tokens based on the same authorization
  grant");
- one of its access tokens: that token is denied until its `exp` (`Revocations`), where this
  provider checks (`/userinfo`, `/oauth/introspect`);
- a token that is unknown, expired, malformed or another client's: nothing happens, and the
  answer is the same 200 (§2.2), so the endpoint says nothing about tokens the caller does
  not hold;
- a JWT that is not an access token (an ID token) issued to the caller: 400
  `unsupported_token_type` (§2.2.1); another client's: the same 200 as an unknown token,
  so the answer never confirms that someone else's token is genuine.
"""

from __future__ import annotations

from aiohttp import web

from oidc_common.errors import NO_STORE, OAuthError

from ..resources import REFRESH_TOKENS, REVOCATIONS
from .client_auth import authenticate
from .presented import ForeignToken, PresentedAccessToken, presented_token
from .refresh_tokens import RefreshTokenState
from .request import read_token_request


async def revoke_grant(request: web.Request, grant_id: str) -> None:
    """Revoke everything issued under the sign-in `grant_id`: its access tokens and its
    refresh-token family. The marker comes first: a successor issued while the family is being
    revoked finds it and revokes itself (`tokens.issuance`), so none outlives the revocation."""
    await request.app[REVOCATIONS].revoke(grant_id)
    await request.app[REFRESH_TOKENS].revoke_family(grant_id)


async def revocation_endpoint(request: web.Request) -> web.Response:
    params = await read_token_request(request)
    client = await authenticate(request, params)
    token = params.require("token")
    found = await presented_token(request, token, client.client_id)
    if isinstance(found, ForeignToken) and client.client_id in found.audiences:
        raise OAuthError("unsupported_token_type", "Only access and refresh tokens are revoked")
    if isinstance(found, RefreshTokenState):
        await revoke_grant(request, found.grant.family_id)
    elif isinstance(found, PresentedAccessToken) and found.client_id == client.client_id:
        claims = found.claims
        await request.app[REVOCATIONS].revoke_access_token(str(claims["jti"]), int(claims["exp"]))
    return web.Response(status=200, headers=NO_STORE)


def revocation_routes() -> list[web.RouteDef]:
    return [web.post("/oauth/revoke", revocation_endpoint)]
