"""The `id_token_hint` of a logout request (RP-Initiated Logout 1.0 §2): an ID token this
tenant issued, expired or not.

Checked strictly, as any JWT this provider trusts: RS256 only, the key chosen by `kid` among
the tenant's published keys, `typ` JWT (an access token is not an ID token), `iss` the
tenant's issuer, `aud` and `sub` present. Its expiry is not checked (§2: "the OP need not
verify that the ID Token is still valid"), but its signature is: a forged or another tenant's
token is refused, never trusted to skip the confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from oidc_common.claims import audiences
from oidc_common.management_auth import ALGORITHM, TenantPublicKeys


class InvalidHint(ValueError):
    """The hint is not an ID token of this tenant; the message says why."""


@dataclass(frozen=True)
class IdTokenHint:
    subject: str
    audiences: tuple[str, ...]
    sid: str | None

    def names(self, client_id: str) -> bool:
        return client_id in self.audiences


async def verify_hint(
    token: str, keys: TenantPublicKeys, tenant_id: str, issuer: str
) -> IdTokenHint:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidHint("id_token_hint is not a JWT") from exc
    if header.get("alg") != ALGORITHM or str(header.get("typ", "JWT")).upper() != "JWT":
        raise InvalidHint("id_token_hint is not an ID token of this provider")
    kid = header.get("kid")
    key = await keys.key(tenant_id, kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise InvalidHint("id_token_hint was not signed by this provider")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": ["iss", "sub", "aud"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidIssuerError as exc:
        raise InvalidHint("id_token_hint was issued for another tenant") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidHint("id_token_hint is not a valid ID token") from exc
    sid = claims.get("sid")
    return IdTokenHint(str(claims["sub"]), audiences(claims), sid if isinstance(sid, str) else None)
