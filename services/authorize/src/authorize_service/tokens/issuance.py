"""The tokens a user's sign-in yields, whichever endpoint hands them out.

One home for what `/authorize` (implicit), the authorization-code exchange and the refresh
grant issue: the access token (RFC 9068; `aud` the API, plus `/userinfo` when `openid` was
granted, as Auth0 does), the ID token (OIDC Core §2) and, with `offline_access`, a refresh
token of the sign-in's family.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.service import DB, SETTINGS
from oidc_common.signing_keys import SigningKey
from oidc_common.tenancy import ORIGIN

from ..oidc_scopes import OFFLINE_ACCESS, OPENID, user_claims
from ..registered_clients import extend_refresh_token_life
from ..resource_servers import find_resource_server
from ..resources import KEYSTORE, REFRESH_TOKENS, REVOCATIONS
from ..targets import check_unregistered_target
from ..users.repository import User
from .access_tokens import mint_access_token
from .authorization_codes import CodeGrant
from .id_tokens import mint_id_token
from .refresh_tokens import RefreshGrant

USERINFO_PATH = "userinfo"


def userinfo_audience(issuer: str) -> str:
    return f"{issuer}{USERINFO_PATH}"


def new_grant_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class UserGrant:
    """What the user granted one client in one sign-in (`grant_id` names the sign-in: its
    refresh-token family and the prefix of its access tokens' `jti`)."""

    tenant_id: str
    client_id: str
    user: User
    scopes: tuple[str, ...]
    audience: str | None
    nonce: str | None
    auth_time: int
    grant_id: str
    # A refresh may narrow the access token's scopes, never its successor's (RFC 6749 §6).
    refresh_scopes: tuple[str, ...] | None = None
    sid: str | None = None  # the login session's, in the ID token

    @property
    def family_scopes(self) -> tuple[str, ...]:
        return self.refresh_scopes if self.refresh_scopes is not None else self.scopes

    @classmethod
    def from_code(cls, code: CodeGrant, user: User, grant_id: str) -> UserGrant:
        """The sign-in an authorization code stands for (RFC 6749 §4.1.3)."""
        return cls(
            code.tenant_id,
            code.client_id,
            user,
            tuple(code.scopes),
            code.audience,
            code.nonce,
            code.auth_time,
            grant_id,
            sid=code.sid,
        )

    @classmethod
    def from_refresh(cls, family: RefreshGrant, user: User, scopes: list[str]) -> UserGrant:
        """The sign-in a refresh token continues, with `scopes` (at most the family's)."""
        return cls(
            family.tenant_id,
            family.client_id,
            user,
            tuple(scopes),
            family.audience,
            None,
            family.auth_time,
            family.family_id,
            tuple(family.scopes),
        )


async def access_token_ttl(request: web.Request, grant: UserGrant) -> int:
    """The API's `token_lifetime` when it sets one (Auth0), else ACCESS_TOKEN_TTL; seconds.

    Raises OAuthError `invalid_target` when the audience is no registered API (a prefix
    resource) on the tenant's own origin: no user token ever carries a system API's audience.
    """
    default = request.app[SETTINGS].access_token_ttl
    if grant.audience is None:
        return default
    api = await find_resource_server(request.app[DB], grant.tenant_id, grant.audience)
    if api is None or api.is_system:
        check_unregistered_target(grant.audience, request[ORIGIN].issuer)
    return api.token_lifetime if api is not None and api.token_lifetime else default


async def _access_token(request: web.Request, key: SigningKey, grant: UserGrant) -> dict[str, Any]:
    issuer = request[ORIGIN].issuer
    userinfo = userinfo_audience(issuer)
    audience: str | list[str] = userinfo
    if grant.audience is not None:
        audience = [grant.audience, userinfo] if OPENID in grant.scopes else grant.audience
    ttl = await access_token_ttl(request, grant)
    issued_at = await request.app[REVOCATIONS].issuable_at(
        grant.tenant_id, grant.user.user_id, grant.client_id
    )
    token = mint_access_token(
        key,
        issuer=issuer,
        audience=audience,
        client_id=grant.client_id,
        scopes=grant.scopes,
        ttl=ttl,
        subject=grant.user.user_id,
        grant_type=None,
        now=issued_at,
        jti=f"{grant.grant_id}.{secrets.token_urlsafe(12)}",
    )
    body: dict[str, Any] = {
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
    }
    if token.scope:  # RFC 6749 §5.1: optional; an empty one says nothing
        body["scope"] = token.scope
    return body


async def _refresh_token(request: web.Request, grant: UserGrant) -> str:
    family = RefreshGrant(
        grant.tenant_id,
        grant.client_id,
        grant.user.user_id,
        grant.grant_id,
        list(grant.family_scopes),
        grant.audience,
        grant.auth_time,
    )
    token, expires_at = await request.app[REFRESH_TOKENS].issue(family)
    if await request.app[REVOCATIONS].is_revoked_grant(grant.grant_id):
        # Revoked while this token was being made (a replay racing its original): the
        # revocation missed it, so revoke the family again, this token included.
        await request.app[REFRESH_TOKENS].revoke_family(grant.grant_id)
        raise OAuthError("invalid_grant", "This sign-in was revoked")
    # The reaper never deletes a client whose users hold a live refresh token.
    await extend_refresh_token_life(request.app[DB], grant.tenant_id, grant.client_id, expires_at)
    return token


async def issue_tokens(
    request: web.Request,
    grant: UserGrant,
    *,
    access_token: bool,
    id_token: bool,
    refresh_token: bool,
) -> dict[str, Any]:
    """The token members of a response (RFC 6749 §5.1 / §4.2.2, OIDC Core §3.1.3.3): an
    access token, an ID token (only with `openid`; `at_hash` when both come together) and a
    refresh token (only with `offline_access`)."""
    key = await request.app[KEYSTORE].signing_key(grant.tenant_id)
    body: dict[str, Any] = await _access_token(request, key, grant) if access_token else {}
    if id_token and OPENID in grant.scopes:
        body["id_token"] = mint_id_token(
            key,
            issuer=request[ORIGIN].issuer,
            client_id=grant.client_id,
            subject=grant.user.user_id,
            auth_time=grant.auth_time,
            nonce=grant.nonce,
            user_claims=user_claims(grant.user, grant.scopes),
            access_token=body.get("access_token"),
            sid=grant.sid,
        )
    if refresh_token and OFFLINE_ACCESS in grant.family_scopes:
        body["refresh_token"] = await _refresh_token(request, grant)
    return body
