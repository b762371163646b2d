"""A token a client presents to `/oauth/revoke` or `/oauth/introspect`, recognised without
spending it: one of this tenant's access tokens (an RS256 `at+jwt` it verifies, whatever its
audience) or one of the presenting client's refresh tokens.

The `token_type_hint` only orders the search (RFC 7009 §2.1, RFC 7662 §2.1); a hint that names
neither type is ignored. Refresh tokens are random strings without dots, access tokens JWTs,
so the shape of the token decides which store is asked first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from oidc_common.claims import audiences
from oidc_common.errors import ManagementApiError
from oidc_common.management_auth import KEYS, NOT_AN_ACCESS_TOKEN, verify_access_token
from oidc_common.tenancy import ORIGIN, TENANT

from ..resources import REFRESH_TOKENS
from .refresh_tokens import RefreshTokenState

ACCESS_TOKEN_HINT = "access_token"
REFRESH_TOKEN_HINT = "refresh_token"


@dataclass(frozen=True)
class PresentedAccessToken:
    claims: dict[str, Any]

    @property
    def client_id(self) -> str | None:
        value = self.claims.get("client_id", self.claims.get("azp"))
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ForeignToken:
    """A JWT typed as something else than an access token (an ID token, say), and the
    audiences it claims (unverified: only to decide what may be said about it)."""

    audiences: tuple[str, ...] = ()


Presented = PresentedAccessToken | RefreshTokenState | ForeignToken | None


def _claimed_audiences(token: str) -> tuple[str, ...]:
    try:
        return audiences(jwt.decode(token, options={"verify_signature": False}))
    except jwt.InvalidTokenError:
        return ()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def presented_token(request: web.Request, token: str, client_id: str) -> Presented:
    """What `token` is: a live-or-expired access token's verified claims (expired ones are
    None: nothing left to say about them), `client_id`'s refresh token in any state, a
    `ForeignToken`, or None (unknown, malformed, expired, another tenant's)."""
    if not looks_like_jwt(token):
        return await request.app[REFRESH_TOKENS].find(token, request[TENANT].id, client_id)
    origin = request[ORIGIN]
    try:
        claims = await verify_access_token(
            token, request.app[KEYS], request[TENANT].id, origin.issuer, None
        )
    except ManagementApiError as exc:
        if exc.message != NOT_AN_ACCESS_TOKEN:
            return None
        return ForeignToken(_claimed_audiences(token))
    return PresentedAccessToken(claims)
