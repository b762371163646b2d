"""ID tokens (OIDC Core §2, §3.1.3.6, §3.2.2.10), RS256 with the tenant's current key."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import jwt

from oidc_common.signing_keys import SIGNING_ALG, SigningKey

ID_TOKEN_TTL = 3600


def half_hash(value: str) -> str:
    """`at_hash`: base64url of the left half of SHA-256 of the ASCII value
    (OIDC Core §3.1.3.6, §3.2.2.9; SHA-256 because the token is RS256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def mint_id_token(
    key: SigningKey,
    *,
    issuer: str,
    client_id: str,
    subject: str,
    auth_time: int,
    nonce: str | None,
    user_claims: Mapping[str, Any],
    access_token: str | None = None,
    ttl: int = ID_TOKEN_TTL,
    now: int | None = None,
    sid: str | None = None,
) -> str:
    """A signed ID token for `client_id`; `at_hash` when the access token is returned
    alongside it."""
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        **user_claims,
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "azp": client_id,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "auth_time": auth_time,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["at_hash"] = half_hash(access_token)
    if sid is not None:  # OIDC Front-Channel §3, Back-Channel Logout §2.1
        claims["sid"] = sid
    return jwt.encode(
        claims, key.private_key, algorithm=SIGNING_ALG, headers={"typ": "JWT", "kid": key.kid}
    )
