"""Proof Key for Code Exchange (RFC 7636), S256 only.

`plain` is refused: it protects nothing against an attacker who can read the authorization
request (RFC 9700 §2.1.1), and discovery advertises S256 alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from oidc_common.errors import OAuthError

S256 = "S256"
# RFC 7636 §4.1: code_verifier = 43*128unreserved; §4.2: the S256 challenge has the same alphabet.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None, *, required: bool) -> str | None:
    """The `code_challenge` of an authorization request, or None when PKCE is not used.

    Raises OAuthError `invalid_request` for a method other than S256 (RFC 7636 §4.4.1), a
    malformed challenge, a method without a challenge, or no challenge when `required`.
    """
    if challenge is None:
        if method is not None:
            raise OAuthError(
                "invalid_request", "code_challenge_method given without code_challenge"
            )
        if required:
            raise OAuthError(
                "invalid_request", "code_challenge is required (PKCE, RFC 7636, method S256)"
            )
        return None
    if method != S256:
        # RFC 7636 §4.3 makes `plain` the default when the method is omitted: refuse both.
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if not _VERIFIER.match(challenge):
        raise OAuthError("invalid_request", "code_challenge is malformed (RFC 7636 section 4.2)")
    return challenge


def verify(verifier: str | None, challenge: str | None) -> bool:
    """Whether `verifier` proves `challenge` (RFC 7636 §4.6); a code issued with a challenge
    needs a verifier, and one issued without must not get one (RFC 9700 §4.8.2)."""
    if challenge is None:
        return verifier is None
    if verifier is None or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
