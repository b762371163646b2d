"""`Idempotency-Key` for registration: a retry returns the first answer and creates nothing.

Records live in Redis for 24 h. The stored answer holds a client secret and a registration
access token, so it is sealed with AES-GCM under a key derived from the Idempotency-Key
itself: only a caller who presents the key can read it back, and Redis never holds a usable
secret. The same key with a different body is refused (422); a retry while the first
request is still running gets 409.

Each attempt's in-flight record carries a random attempt id, and the attempt only ever
replaces (with its answer) or removes its own record, by compare-and-set: a request that
outlived its in-flight record cannot overwrite the record of a retry that began since. The
first answer is recorded before it is sent when Redis allows; when Redis went away
mid-request, recording goes on in the background until Redis is back, while the attempt's
own record is still there: meanwhile a retry is told 409 (still running), and once recorded
it gets the first answer, never a second client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from oidc_common.errors import OAuthError

log = logging.getLogger(__name__)

RETENTION_SECONDS = 24 * 3600
IN_FLIGHT_SECONDS = 30
# Seconds between attempts to record an answer while Redis is away.
RECORD_RETRY_INTERVAL = 0.5
MAX_KEY_LENGTH = 255
# Registration is anonymous: the key is what stands between a replay and someone else's
# credentials, so it must be unguessable (a UUID has 36 characters).
MIN_KEY_LENGTH = 22


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """This request holds the key: its in-flight record carries `id`."""

    id: str


# KEYS[1] the record; ARGV[1] the attempt id; ARGV[2] the new record ("" deletes);
# ARGV[3] its lifetime in seconds. 1 if the in-flight record of that attempt was replaced.
_REPLACE_OWN = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, record = pcall(cjson.decode, current)
if not ok or record['state'] ~= 'pending' or record['attempt'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
end
return 1
"""


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
        self._replace_own = redis.register_script(_REPLACE_OWN)
        # Answers still being recorded in the background (referenced until done).
        self._recording: set[asyncio.Task[None]] = set()

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

    async def begin(self, tenant_id: str, key: str, body_fingerprint: str) -> Replay | Attempt:
        """A replay of the first answer, or the Attempt this request proceeds as. Raises
        OAuthError 422 (the key was used with another body) or 409 (still running)."""
        redis_key = self._redis_key(tenant_id, key)
        attempt = Attempt(os.urandom(12).hex())
        pending = json.dumps(
            {"state": "pending", "fingerprint": body_fingerprint, "attempt": attempt.id}
        )
        for _ in range(2):
            if await self._redis.set(redis_key, pending, nx=True, ex=IN_FLIGHT_SECONDS):
                return attempt
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
        self,
        tenant_id: str,
        key: str,
        attempt: Attempt,
        body_fingerprint: str,
        status: int,
        body: dict[str, Any],
    ) -> None:
        """Record the answer in place of this attempt's in-flight record, now or, while
        Redis is away, in the background for as long as that record may still be there;
        never raises."""
        record = self._done_record(tenant_id, key, body_fingerprint, status, body)
        redis_key = self._redis_key(tenant_id, key)
        try:
            await self._record(redis_key, attempt, record)
        except Exception as exc:
            log.warning("idempotency record not stored yet, retrying", extra={"error": str(exc)})
            task = asyncio.create_task(self._record_later(redis_key, attempt, record))
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record(self, redis_key: str, attempt: Attempt, record: str) -> None:
        if not await self._replace_own(
            keys=[redis_key], args=[attempt.id, record, RETENTION_SECONDS]
        ):
            # Its in-flight record expired (the request outlived it): a retry may already
            # hold the key, and its record is not ours to replace.
            log.warning("idempotency record not stored: the attempt outlived its record")

    async def _record_later(self, redis_key: str, attempt: Attempt, record: str) -> None:
        deadline = time.monotonic() + IN_FLIGHT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(RECORD_RETRY_INTERVAL)
            try:
                await self._record(redis_key, attempt, record)
            except Exception as exc:
                log.debug("idempotency record still not stored", extra={"error": str(exc)})
                continue
            return
        log.warning("idempotency record lost: Redis stayed away")

    def _done_record(
        self, tenant_id: str, key: str, body_fingerprint: str, status: int, body: dict[str, Any]
    ) -> str:
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
        return json.dumps(record)

    async def abandon(self, tenant_id: str, key: str, attempt: Attempt) -> None:
        """Remove this attempt's in-flight record (it failed: a retry may run again)."""
        await self._replace_own(keys=[self._redis_key(tenant_id, key)], args=[attempt.id, "", 0])
