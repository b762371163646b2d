"""Pending interactions: an authorization request waiting for the user to sign in or consent.

Kept in Redis under `{prefix}interaction:{id}` for at most INTERACTION_TTL seconds
(short-lived state belongs in Redis, with a TTL, not in MongoDB). The id travels in the page
URL (`/u/login?state=…`, as Auth0 does); a second secret, the browser binding, lives only
in a cookie scoped to `/u/`, so a link to someone else's interaction cannot be completed in
another browser. Each page form carries the interaction's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from ..authorization.request import AuthorizationRequest
from ..redis_store import RedisStore

INTERACTION_TTL = 600
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def binding_cookie(interaction_id: str) -> str:
    """One cookie per interaction, so several tabs can sign in at once."""
    return f"ia_{interaction_id[:16]}"


@dataclass(frozen=True)
class Interaction:
    id: str
    tenant_id: str
    request: AuthorizationRequest
    csrf: str
    binding_hash: str
    user_id: str | None = None
    auth_time: int | None = None

    def bound_to(self, binding: str | None) -> bool:
        return binding is not None and hmac.compare_digest(digest(binding), self.binding_hash)

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "request": self.request.to_json(),
            "csrf": self.csrf,
            "binding_hash": self.binding_hash,
            "user_id": self.user_id,
            "auth_time": self.auth_time,
        }
        return json.dumps(data, separators=(",", ":"))


class Interactions(RedisStore):
    namespace = "interaction"

    async def start(
        self,
        tenant_id: str,
        request: AuthorizationRequest,
        user_id: str | None = None,
        auth_time: int | None = None,
    ) -> tuple[Interaction, str]:
        """A new interaction and its browser binding secret (for the cookie only)."""
        binding = secrets.token_urlsafe(32)
        interaction = Interaction(
            id=secrets.token_urlsafe(24),
            tenant_id=tenant_id,
            request=request,
            csrf=secrets.token_urlsafe(32),
            binding_hash=digest(binding),
            user_id=user_id,
            auth_time=auth_time,
        )
        await self._redis.set(self.key(interaction.id), interaction.to_json(), ex=INTERACTION_TTL)
        return interaction, binding

    async def load(self, interaction_id: str | None, tenant_id: str) -> Interaction | None:
        """The live interaction `interaction_id` of `tenant_id`, or None."""
        if not interaction_id or len(interaction_id) > 64 or not set(interaction_id) <= _ID_CHARS:
            return None
        raw = await self._redis.get(self.key(interaction_id))
        if raw is None:
            return None
        data = json.loads(raw)
        if data["tenant_id"] != tenant_id:
            return None
        return Interaction(
            id=interaction_id,
            tenant_id=data["tenant_id"],
            request=AuthorizationRequest.from_json(data["request"]),
            csrf=data["csrf"],
            binding_hash=data["binding_hash"],
            user_id=data.get("user_id"),
            auth_time=data.get("auth_time"),
        )

    async def signed_in(
        self, interaction: Interaction, user_id: str, auth_time: int
    ) -> Interaction:
        """Record who signed in; a fresh CSRF token for the next form (the old one was used)."""
        updated = replace(
            interaction, user_id=user_id, auth_time=auth_time, csrf=secrets.token_urlsafe(32)
        )
        await self._redis.set(
            self.key(interaction.id), updated.to_json(), ex=INTERACTION_TTL, xx=True
        )
        return updated

    async def finish(self, interaction: Interaction) -> bool:
        """Consume the interaction; False if it was already consumed (a double submit)."""
        return bool(await self._redis.delete(self.key(interaction.id)))
