"""Generated credentials (client ids, secrets, tokens) and how they are stored.

Secrets and registration access tokens are 256-bit random values, so a fast SHA-256 hash is
enough to make a database leak useless (no dictionary to attack); a slow password hash would
only slow every token request down. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HASH_PREFIX = "sha256$"


def new_client_id() -> str:
    """32 alphanumerics (~190 bits), the shape Auth0 client ids have."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def new_secret() -> str:
    """A 64-character URL-safe secret (384 bits of entropy)."""
    return secrets.token_urlsafe(48)


def hash_secret(secret: str) -> str:
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored_hash: str | None) -> bool:
    if not stored_hash or not stored_hash.startswith(HASH_PREFIX):
        return False
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())
