"""Tenant signing keys: RSA key generation, public JWKs, private keys encrypted at rest.

Private keys are sealed with AES-256-GCM under the key-encryption key from configuration;
the key id is bound as associated data so a ciphertext cannot be swapped onto another key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNING_ALG = "RS256"


class KeyDecryptionError(ValueError):
    """The sealed private key could not be opened (wrong key-encryption key or tampering)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(kek: bytes, plaintext: bytes, associated: str) -> str:
    nonce = os.urandom(12)
    return _b64(nonce + AESGCM(kek).encrypt(nonce, plaintext, associated.encode()))


def unseal(kek: bytes, sealed: str, associated: str) -> bytes:
    try:
        raw = _unb64(sealed)
        return AESGCM(kek).decrypt(raw[:12], raw[12:], associated.encode())
    except (InvalidTag, ValueError) as exc:
        raise KeyDecryptionError("cannot decrypt signing key") from exc


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key())
        )
        jwk.update({"kid": self.kid, "use": "sig", "alg": SIGNING_ALG})
        return jwk

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate_signing_key(bits: int = 2048) -> SigningKey:
    return SigningKey(
        kid=secrets.token_urlsafe(16),
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=bits),
    )


def sealed_private_key(key: SigningKey, kek: bytes) -> str:
    return seal(kek, key.private_pem(), key.kid)


def open_private_key(kid: str, sealed: str, kek: bytes) -> SigningKey:
    pem = unseal(kek, sealed, kid)
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise KeyDecryptionError("stored key is not an RSA key")
    return SigningKey(kid=kid, private_key=private)
