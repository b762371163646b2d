"""Login sessions: who is signed in to this tenant in this browser, and since when.

The cookie holds a random session id; Redis holds `{prefix}session:{sha256(id)}` with the
user and the authentication time (OIDC Core `auth_time`), so a copy of Redis does not hand
out live sessions. Every login mints a new id (no session fixation, OWASP ASVS 3.2.1).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from aiohttp import web

from oidc_common.tenancy import ORIGIN, Origin

from ..redis_store import RedisStore
from .cookies import our_cookie

SESSION_COOKIE = "oidc_session"
SESSION_TTL = 24 * 3600


def session_cookie(origin: Origin) -> str:
    """`__Host-oidc_session` over https: a sibling domain can then neither set nor shadow it
    (RFC 6265bis §4.1.3.2); plain http (local runs) cannot use the prefix."""
    return f"__Host-{SESSION_COOKIE}" if origin.scheme == "https" else SESSION_COOKIE


@dataclass(frozen=True)
class LoginSession:
    tenant_id: str
    user_id: str
    auth_time: int  # seconds since the epoch


class Sessions(RedisStore):
    namespace = "session"

    def _key(self, session_id: str) -> str:
        return self.key(hashlib.sha256(session_id.encode()).hexdigest())

    async def current(self, request: web.Request, tenant_id: str) -> LoginSession | None:
        """The session the request's cookie names, if it is live and of this tenant."""
        session_id = our_cookie(request, session_cookie(request[ORIGIN]))
        if session_id is None:
            return None
        raw = await self._redis.get(self._key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("tenant_id") != tenant_id:
            return None
        return LoginSession(data["tenant_id"], data["user_id"], int(data["auth_time"]))

    async def create(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: LoginSession,
        origin: Origin,
    ) -> None:
        """Store `session` under a new id, drop the one the browser had, set the cookie."""
        old = our_cookie(request, session_cookie(origin))
        if old is not None:
            await self._redis.delete(self._key(old))
        session_id = secrets.token_urlsafe(32)
        value = {
            "tenant_id": session.tenant_id,
            "user_id": session.user_id,
            "auth_time": session.auth_time,
        }
        await self._redis.set(self._key(session_id), json.dumps(value), ex=SESSION_TTL)
        response.set_cookie(
            session_cookie(origin),
            session_id,
            max_age=SESSION_TTL,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=origin.scheme == "https",
        )
