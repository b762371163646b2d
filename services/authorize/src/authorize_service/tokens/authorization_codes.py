"""Authorization codes (RFC 6749 §4.1.2, §10.5): single use, short-lived, bound.

A code is a random 256-bit string; Redis keeps `{prefix}authcode:{sha256(code)}` (so a copy
of Redis cannot redeem anything) for CODE_TTL seconds with everything the exchange must
check: client, redirect_uri, PKCE challenge, and what was granted. Redemption claims the
code with SET NX on a `used` marker that outlives the code: a second redemption finds the
marker, and the grant it records is revoked (RFC 6749 §4.1.2: "the authorization server
SHOULD revoke ... all tokens previously issued based on that authorization code").
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

from ..redis_store import RedisStore

CODE_TTL = 60
# Long enough to catch a replay of a code whose tokens are still alive.
USED_MARKER_TTL = 24 * 3600
_MAX_CODE = 128


@dataclass(frozen=True)
class CodeGrant:
    """What a code stands for."""

    tenant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    user_id: str
    scopes: list[str]
    audience: str | None
    nonce: str | None
    auth_time: int
    sid: str | None = None  # the login session's, for the ID token (Front/Back-Channel Logout)
    # When the code was issued (seconds): a code issued before the user's access to the
    # client was taken back is not redeemed (`Revocations.taken_back_since`).
    issued_at: int | None = None


@dataclass(frozen=True)
class Redemption:
    grant: CodeGrant | None  # None: unknown or expired code
    replayed: bool  # the code was redeemed before
    grant_id: str | None  # of the first redemption, when replayed


class AuthorizationCodes(RedisStore):
    namespace = "authcode"

    def _keys(self, code: str) -> tuple[str, str]:
        hashed = hashlib.sha256(code.encode()).hexdigest()
        return self.key(hashed), self.key("used", hashed)

    async def issue(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(32)
        stamped = asdict(grant)
        if stamped["issued_at"] is None:
            stamped["issued_at"] = int(time.time())
        await self._redis.set(self._keys(code)[0], json.dumps(stamped), ex=CODE_TTL)
        return code

    async def redeem(self, code: str, grant_id: str) -> Redemption:
        """Claim `code` for the grant `grant_id`; exactly one caller ever gets its CodeGrant."""
        if len(code) > _MAX_CODE or not code.isascii():
            return Redemption(None, False, None)
        code_key, used_key = self._keys(code)
        first = await self._redis.set(used_key, grant_id, nx=True, ex=USED_MARKER_TTL)
        if not first:
            previous = await self._redis.get(used_key)
            await self._redis.delete(code_key)
            shown = previous.decode() if isinstance(previous, bytes) else previous
            return Redemption(None, True, shown)
        raw = await self._redis.getdel(code_key)
        if raw is None:
            await self._redis.delete(used_key)  # never issued or expired: nothing to guard
            return Redemption(None, False, None)
        return Redemption(CodeGrant(**json.loads(raw)), False, None)
