"""Signing in to the connected-apps page itself, without an application in between.

The form carries a one-time id and CSRF token kept in Redis (`{prefix}apps-login:{id}`,
`FORM_TTL` seconds), and is bound to the browser that was shown it: a random binding in a
cookie scoped to `/u/apps` (its hash stored with the form), as the login page's interactions
are, so a form fetched by someone else and posted from another site signs no one in (login
CSRF). The password check, the brute-force throttle and the session are the login page's own
(`users.login`, `interaction.throttle`, `interaction.sessions`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from ..redis_store import RedisStore

FORM_TTL = 600


BINDING_COOKIE = "apps_login"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class SignInForm:
    id: str
    csrf: str
    tenant_id: str
    binding_hash: str

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())

    def bound_to(self, binding: str | None) -> bool:
        return binding is not None and hmac.compare_digest(_digest(binding), self.binding_hash)


class SignInForms(RedisStore):
    namespace = "apps-login"

    async def start(self, tenant_id: str) -> tuple[SignInForm, str]:
        """A new form and the browser binding for its cookie."""
        binding = secrets.token_urlsafe(24)
        form = SignInForm(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), tenant_id, _digest(binding)
        )
        await self._redis.set(self.key(form.id), json.dumps(asdict(form)), ex=FORM_TTL)
        return form, binding

    async def get(self, form_id: str) -> SignInForm | None:
        if not (form_id.isascii() and 16 <= len(form_id) <= 64):
            return None
        raw = await self._redis.get(self.key(form_id))
        return SignInForm(**json.loads(raw)) if raw is not None else None

    async def used(self, form: SignInForm) -> None:
        await self._redis.delete(self.key(form.id))
