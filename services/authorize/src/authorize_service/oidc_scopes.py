"""The OpenID Connect scopes this provider serves and the user claims each one releases.

OIDC Core §5.4 (profile, email), §11 (offline_access). One home for discovery's
`scopes_supported`/`claims_supported`, the consent page's wording, and the claims of ID
tokens and `/userinfo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"

# Scope -> what the consent page tells the user it shares.
DESCRIPTIONS: Mapping[str, str] = {
    OPENID: "Sign you in with your account",
    "profile": "Your name",
    "email": "Your email address",
    OFFLINE_ACCESS: "Stay signed in (access when you are not using the application)",
}
OIDC_SCOPES = tuple(DESCRIPTIONS)  # in the order discovery lists them

# Scope -> the user claims it releases (this provider stores name, email, email_verified).
CLAIMS_BY_SCOPE: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "updated_at"),
    "email": ("email", "email_verified"),
}


def user_claims(user: Any, scopes: Iterable[str]) -> dict[str, Any]:
    """The claims of `user` the granted `scopes` release (OIDC Core §5.4); absent values are
    left out rather than sent as null (§5.3.2)."""
    claims: dict[str, Any] = {}
    for scope in scopes:
        for name in CLAIMS_BY_SCOPE.get(scope, ()):
            value = getattr(user, name, None)
            if name == "updated_at" and value is not None:
                value = int(value.timestamp())
            if value is not None:
                claims[name] = value
    return claims
