"""Signing in to the connected-apps page itself, without an application in between.

The form carries a one-time id and CSRF token kept in Redis (`{prefix}apps-login:{id}`,
`FORM_TTL` seconds); the password check, the brute-force throttle and the session are the
login page's own (`users.login`, `interaction.throttle`, `interaction.sessions`).
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from ..redis_store import RedisStore

FORM_TTL = 600


@dataclass(frozen=True)
class SignInForm:
    id: str
    csrf: str
    tenant_id: str

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SignInForms(RedisStore):
    namespace = "apps-login"

    async def start(self, tenant_id: str) -> SignInForm:
        form = SignInForm(secrets.token_urlsafe(24), secrets.token_urlsafe(24), tenant_id)
        await self._redis.set(self.key(form.id), json.dumps(asdict(form)), ex=FORM_TTL)
        return form

    async def get(self, form_id: str) -> SignInForm | None:
        if not (form_id.isascii() and 16 <= len(form_id) <= 64):
            return None
        raw = await self._redis.get(self.key(form_id))
        return SignInForm(**json.loads(raw)) if raw is not None else None

    async def used(self, form: SignInForm) -> None:
        await self._redis.delete(self.key(form.id))
