"""Login sessions: who is signed in to this tenant in this browser, since when, and to which
clients (the single sign-on session of OIDC Core, the one logout ends).

The cookie holds a random session id; Redis holds `{prefix}session:{sha256(id)}`, so a copy of
Redis does not hand out live sessions:

    {"tenant_id": str, "user_id": str, "auth_time": int, "sid": str, "clients": [str, ...],
     "created_at": int, "last_seen": int, "csrf": str}   (times in seconds since the epoch)

`sid` is the session's public name (OIDC Front-Channel and Back-Channel Logout `sid`), carried
in ID tokens and Logout Tokens; it never lets anyone act on the session. `clients` are the
clients the session signed the user in to, in order: whom a logout tells. Every login mints a
new session (no session fixation, OWASP ASVS 3.2.1).

Lifetimes (`SessionLifetimes`): a session ends `absolute` seconds after its login whatever
happens, and earlier when it went unused for `idle` seconds. Each use moves `last_seen` and
the key's expiry (never past the absolute end).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from oidc_common.tenancy import ORIGIN, Origin

from ..redis_store import RedisStore
from .cookies import our_cookie

SESSION_COOKIE = "oidc_session"
# Defaults of the tenant settings `session_lifetime` and `idle_session_lifetime` (hours).
DEFAULT_SESSION_LIFETIME_HOURS = 24
DEFAULT_IDLE_SESSION_LIFETIME_HOURS = 8
# A session records at most this many clients (a logout tells each of them).
MAX_SESSION_CLIENTS = 100


def session_cookie(origin: Origin) -> str:
    """`__Host-oidc_session` over https: a sibling domain can then neither set nor shadow it
    (RFC 6265bis §4.1.3.2); plain http (local runs) cannot use the prefix."""
    return f"__Host-{SESSION_COOKIE}" if origin.scheme == "https" else SESSION_COOKIE


@dataclass(frozen=True)
class SessionLifetimes:
    absolute: int = DEFAULT_SESSION_LIFETIME_HOURS * 3600  # seconds after the login
    idle: int = DEFAULT_IDLE_SESSION_LIFETIME_HOURS * 3600  # seconds without use


@dataclass(frozen=True)
class LoginSession:
    tenant_id: str
    user_id: str
    auth_time: int  # seconds since the epoch
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    clients: tuple[str, ...] = ()
    created_at: int = field(default_factory=lambda: int(time.time()))
    last_seen: int = field(default_factory=lambda: int(time.time()))
    # The CSRF token of the session's own forms (the connected-apps page).
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())

    def document(self) -> str:
        return json.dumps(
            {
                "tenant_id": self.tenant_id,
                "user_id": self.user_id,
                "auth_time": self.auth_time,
                "sid": self.sid,
                "clients": list(self.clients),
                "created_at": self.created_at,
                "last_seen": self.last_seen,
                "csrf": self.csrf,
            }
        )

    @classmethod
    def parse(cls, raw: bytes | str) -> LoginSession:
        data = json.loads(raw)
        auth_time = int(data["auth_time"])
        return cls(
            data["tenant_id"],
            data["user_id"],
            auth_time,
            # Sessions stored before sids existed get one; they end within a day anyway.
            str(data.get("sid") or secrets.token_urlsafe(24)),
            tuple(str(client) for client in data.get("clients") or ()),
            int(data.get("created_at", auth_time)),
            int(data.get("last_seen", auth_time)),
            str(data.get("csrf") or secrets.token_urlsafe(24)),
        )


# The session of this request: read once (the flow asks more than once), or started by a
# login before its cookie reaches the browser.
_LOGIN_SESSION = web.RequestKey("login_session", LoginSession)
_SESSION_ID = web.RequestKey("login_session_id", str)


class Sessions(RedisStore):
    namespace = "session"

    def _key(self, session_id: str) -> str:
        return self.key(hashlib.sha256(session_id.encode()).hexdigest())

    def _sid_key(self, tenant_id: str, sid: str) -> str:
        # sid -> the session's key: a logout that arrives without the cookie (a cross-site
        # POST carries no SameSite=Lax cookie) still ends the session its ID token names.
        return self.key("sid", tenant_id, sid)

    def _cookie_value(self, request: web.Request) -> str | None:
        return our_cookie(request, session_cookie(request[ORIGIN]))

    async def current(
        self, request: web.Request, tenant_id: str, lifetimes: SessionLifetimes | None = None
    ) -> LoginSession | None:
        """The live session of this tenant the request's cookie names (or that this request
        started), its use recorded; None when there is none, or it outlived a lifetime. Read
        from Redis once per request."""
        if _LOGIN_SESSION in request:
            return request[_LOGIN_SESSION]
        session_id = self._cookie_value(request)
        if session_id is None:
            return None
        key = self._key(session_id)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        session = LoginSession.parse(raw)
        if session.tenant_id != tenant_id:
            return None
        limits = lifetimes or SessionLifetimes()
        now = int(time.time())
        ends = session.created_at + limits.absolute
        if now >= ends or now - session.last_seen >= limits.idle:
            await self._redis.delete(key)
            return None
        if now > session.last_seen:
            touched = LoginSession(**{**session.__dict__, "last_seen": now})
            ttl = min(limits.idle, ends - now)
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(key, touched.document(), ex=ttl)
            pipe.set(self._sid_key(session.tenant_id, session.sid), key, ex=ttl)
            await pipe.execute()
            session = touched
        request[_LOGIN_SESSION] = session
        request[_SESSION_ID] = session_id
        return session

    async def open(
        self, request: web.Request, session: LoginSession, lifetimes: SessionLifetimes
    ) -> None:
        """Store `session` under a new id and drop the one the browser had; the rest of this
        request sees it as the current session. `attach` then sets its cookie."""
        old = self._cookie_value(request)
        if old is not None:
            await self._redis.delete(self._key(old))
        session_id = secrets.token_urlsafe(32)
        ttl = min(lifetimes.idle, lifetimes.absolute)
        key = self._key(session_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(key, session.document(), ex=ttl)
        pipe.set(self._sid_key(session.tenant_id, session.sid), key, ex=ttl)
        await pipe.execute()
        request[_LOGIN_SESSION] = session
        request[_SESSION_ID] = session_id

    def attach(
        self, request: web.Request, response: web.StreamResponse, lifetimes: SessionLifetimes
    ) -> None:
        """The cookie of the session `open` stored in this request, on `response`."""
        origin = request[ORIGIN]
        response.set_cookie(
            session_cookie(origin),
            request[_SESSION_ID],
            max_age=lifetimes.absolute,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=origin.scheme == "https",
        )

    async def signed_in_to(self, request: web.Request, client_id: str) -> None:
        """Record that the current session signed its user in to `client_id`."""
        session_id = request.get(_SESSION_ID) or self._cookie_value(request)
        if session_id is None:
            return
        key = self._key(session_id)
        raw = await self._redis.get(key)
        if raw is None:
            return
        session = LoginSession.parse(raw)
        if client_id in session.clients or len(session.clients) >= MAX_SESSION_CLIENTS:
            return
        updated = LoginSession(**{**session.__dict__, "clients": (*session.clients, client_id)})
        ttl = await self._redis.ttl(key)
        await self._redis.set(key, updated.document(), ex=max(int(ttl), 1))
        if _LOGIN_SESSION in request:
            request[_LOGIN_SESSION] = updated

    def forget(self, request: web.Request, response: web.StreamResponse) -> None:
        """Clear the session cookie on `response`."""
        origin = request[ORIGIN]
        response.del_cookie(session_cookie(origin), path="/", secure=origin.scheme == "https")

    async def end(self, request: web.Request) -> LoginSession | None:
        """End the session the request's cookie names; it is returned if it was live (`forget`
        clears the cookie)."""
        request.pop(_LOGIN_SESSION, None)
        session_id = self._cookie_value(request)
        if session_id is None:
            return None
        raw = await self._redis.getdel(self._key(session_id))
        if raw is None:
            return None
        session = LoginSession.parse(raw)
        await self._redis.delete(self._sid_key(session.tenant_id, session.sid))
        return session

    async def end_sid(self, tenant_id: str, sid: str, user_id: str) -> LoginSession | None:
        """End the session `sid` of `user_id` (named by a verified ID token), whichever
        browser holds it; the session, if it was live."""
        key = await self._redis.get(self._sid_key(tenant_id, sid))
        if key is None:
            return None
        raw = await self._redis.get(key)
        session = LoginSession.parse(raw) if raw is not None else None
        if session is None or session.sid != sid or session.user_id != user_id:
            return None
        await self._redis.delete(key, self._sid_key(tenant_id, sid))
        return session
