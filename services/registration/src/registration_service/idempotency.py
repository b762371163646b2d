"""`Idempotency-Key` for registration: a retry returns the first answer and creates nothing.

Records live in Redis for 24 h. The stored answer holds a client secret and a registration
access token, so it is sealed with AES-GCM under a key derived from the Idempotency-Key
itself: only a caller who presents the key can read it back, and Redis never holds a usable
secret. The same key with a different body is refused (422); a retry while the first
request is still running gets 409.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from oidc_common.errors import OAuthError

RETENTION_SECONDS = 24 * 3600
IN_FLIGHT_SECONDS = 30
MAX_KEY_LENGTH = 255
# Registration is anonymous: the key is what stands between a replay and someone else's
# credentials, so it must be unguessable (a UUID has 36 characters).
MIN_KEY_LENGTH = 22


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def validate_key(key: str) -> str:
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH or not (
        key.isprintable() and key.isascii()
    ):
        raise OAuthError(
            "invalid_request",
            f"Idempotency-Key must be {MIN_KEY_LENGTH}..{MAX_KEY_LENGTH} printable ASCII "
            "characters (a random UUID, for example)",
        )
    return key


class IdempotencyStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _redis_key(self, tenant_id: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self._prefix}idempotency:{tenant_id}:{digest}"

    @staticmethod
    def _cipher(tenant_id: str, key: str) -> AESGCM:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=tenant_id.encode(),
            info=b"registration-idempotency",
        ).derive(key.encode())
        return AESGCM(derived)

    async def begin(self, tenant_id: str, key: str, body_fingerprint: str) -> Replay | None:
        """A replay of the first answer, or None when this request should proceed."""
        redis_key = self._redis_key(tenant_id, key)
        pending = json.dumps({"state": "pending", "fingerprint": body_fingerprint})
        for _ in range(2):
            if await self._redis.set(redis_key, pending, nx=True, ex=IN_FLIGHT_SECONDS):
                return None
            raw = await self._redis.get(redis_key)
            if raw is None:
                continue  # expired between the two calls
            record = json.loads(raw)
            if record["fingerprint"] != body_fingerprint:
                raise OAuthError(
                    "invalid_request",
                    "Idempotency-Key was already used with a different request body",
                    status=422,
                )
            if record["state"] == "pending":
                raise OAuthError(
                    "invalid_request",
                    "A request with this Idempotency-Key is still being processed",
                    status=409,
                )
            sealed = base64.b64decode(record["sealed"])
            plain = self._cipher(tenant_id, key).decrypt(sealed[:12], sealed[12:], None)
            return Replay(int(record["status"]), json.loads(plain))
        raise OAuthError(
            "temporarily_unavailable", "Try again", status=503, headers={"Retry-After": "1"}
        )

    async def complete(
        self, tenant_id: str, key: str, body_fingerprint: str, status: int, body: dict[str, Any]
    ) -> None:
        nonce = os.urandom(12)
        sealed = nonce + self._cipher(tenant_id, key).encrypt(
            nonce, json.dumps(body).encode(), None
        )
        record = {
            "state": "done",
            "fingerprint": body_fingerprint,
            "status": status,
            "sealed": base64.b64encode(sealed).decode(),
        }
        await self._redis.set(
            self._redis_key(tenant_id, key), json.dumps(record), ex=RETENTION_SECONDS
        )

    async def abandon(self, tenant_id: str, key: str) -> None:
        await self._redis.delete(self._redis_key(tenant_id, key))
