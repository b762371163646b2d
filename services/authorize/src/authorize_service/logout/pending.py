"""Logout requests waiting for the user's confirmation (RP-Initiated Logout 1.0 §2: without
a valid `id_token_hint`, the OP asks before ending the session).

Kept in Redis under `{prefix}logout:{id}` for `PENDING_TTL` seconds: where to send the user
afterwards, the `state` to return, the client, and the `sid` of the session the page was shown
for. The confirmation form carries the id and a separate CSRF token (compared in constant
time); it ends only that session, so a form planted in another browser ends nothing.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from ..redis_store import RedisStore

PENDING_TTL = 600


@dataclass(frozen=True)
class PendingLogout:
    id: str
    csrf: str
    tenant_id: str
    sid: str
    client_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class PendingLogouts(RedisStore):
    namespace = "logout"

    async def start(
        self,
        tenant_id: str,
        sid: str,
        client_id: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
    ) -> PendingLogout:
        pending = PendingLogout(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            tenant_id,
            sid,
            client_id,
            post_logout_redirect_uri,
            state,
        )
        await self._redis.set(self.key(pending.id), json.dumps(asdict(pending)), ex=PENDING_TTL)
        return pending

    async def take(self, pending_id: str) -> PendingLogout | None:
        """The pending logout `pending_id`, removed (a confirmation is used once)."""
        if not (pending_id.isascii() and 16 <= len(pending_id) <= 64):
            return None
        raw = await self._redis.getdel(self.key(pending_id))
        return PendingLogout(**json.loads(raw)) if raw is not None else None
