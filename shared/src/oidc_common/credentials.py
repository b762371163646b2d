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
# Byte b -> _ALPHABET[b % 62] in one C-level pass; bytes 248..255 are dropped instead.
_TO_ALPHABET = bytes(ord(_ALPHABET[b % 62]) for b in range(256))
_ABOVE_LAST_MULTIPLE = bytes(range(248, 256))
HASH_PREFIX = "sha256$"


def new_client_id() -> str:
    """32 alphanumerics (~190 bits), the shape Auth0 client ids have."""
    # One read of the OS random source, mapped without bias (256 % 62 != 0, so values
    # above the last multiple of 62 are dropped and the draw repeats if too few remain).
    drawn = b""
    while len(drawn) < 32:
        drawn += secrets.token_bytes(48).translate(_TO_ALPHABET, _ABOVE_LAST_MULTIPLE)
    return drawn[:32].decode("ascii")


def new_secret() -> str:
    """A 64-character URL-safe secret (384 bits of entropy)."""
    return secrets.token_urlsafe(48)


def hash_secret(secret: str) -> str:
    # surrogatepass: a string that is not valid Unicode still hashes (and never matches).
    return HASH_PREFIX + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_secret(secret: str, stored_hash: str | None) -> bool:
    if not stored_hash or not stored_hash.startswith(HASH_PREFIX):
        return False
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())
