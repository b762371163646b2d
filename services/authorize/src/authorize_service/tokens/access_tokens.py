"""JWT access tokens (RFC 9068 profile) signed with the tenant's current RS256 key."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from oidc_common.signing_keys import SIGNING_ALG, SigningKey

# RFC 9068 §2.1: the media type that keeps an access token from passing as an ID token.
JWT_PROFILE_TYPE = "at+jwt"
# Auth0's grant-type claim for machine-to-machine tokens.
CLIENT_CREDENTIALS_GTY = "client-credentials"


def client_subject(client_id: str) -> str:
    """The `sub` of a token a client obtained for itself (Auth0: `<client_id>@clients`)."""
    return f"{client_id}@clients"


@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: dict[str, Any]
    expires_in: int

    @property
    def scope(self) -> str:
        return str(self.claims["scope"])


def mint_access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str | list[str],
    client_id: str,
    scopes: Sequence[str],
    ttl: int,
    subject: str | None = None,
    grant_type: str | None = CLIENT_CREDENTIALS_GTY,
    now: int | None = None,
    jti: str | None = None,
) -> AccessToken:
    """Sign an access token. `subject` defaults to the client itself (client credentials);
    `audience` is a list when the token serves an API and `/userinfo` (OIDC Core §5.3)."""
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject if subject is not None else client_subject(client_id),
        "aud": audience,
        "azp": client_id,
        # RFC 9068 §2.2 requires client_id; azp is what Auth0 clients read.
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": jti if jti is not None else secrets.token_urlsafe(18),
    }
    if grant_type is not None:
        claims["gty"] = grant_type
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm=SIGNING_ALG,
        headers={"typ": JWT_PROFILE_TYPE, "kid": key.kid},
    )
    return AccessToken(token=token, claims=claims, expires_in=ttl)
