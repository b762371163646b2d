"""Management API access-token verification (RFC 6750 bearer tokens, RFC 9068 JWTs).

Strict by construction: RS256 only (no `none`, no HMAC, so no algorithm confusion with the
public key), the key chosen by `kid` among the *request's tenant's* published keys, `iss`
the tenant's issuer, `aud` the tenant's Management API audience, `exp`/`iat`/`nbf` checked
with a small leeway, and a scope required per route. Failures never say more than needed.

Who may call (RFC 9700 §2.3, least privilege): only a client acting for itself. A token must be
one `client_credentials` minted (`gty` "client-credentials", `sub` = `<client_id>@clients`), and
its client must still be live and still hold a client grant for the Management API whose scopes
include the route's. A user's token, whatever its audience and scope, never passes; deleting the
client or its grant stops its tokens at once (`ManagementCallers`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from .errors import ManagementApiError
from .management_api import MANAGEMENT_API
from .mongo import Collections, Document
from .service import REDIS, SETTINGS
from .tenancy import ORIGIN, TENANT
from .token_denylist import denied

ALGORITHM = "RS256"
LEEWAY_SECONDS = 30
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Auth0's grant-type claim of a machine-to-machine token; the only kind this API accepts.
CLIENT_CREDENTIALS_GTY = "client-credentials"
# The description of the refusal of a JWT that is not typed as an access token (an ID token).
NOT_AN_ACCESS_TOKEN = "Not an access token"

Claims = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _invalid_token(description: str) -> ManagementApiError:
    return ManagementApiError(
        401,
        description,
        "invalid_token",
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def _insufficient_scope(scope: str) -> ManagementApiError:
    return ManagementApiError(
        403,
        f"Insufficient scope, expected: {scope}",
        "insufficient_scope",
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
    )


class TenantPublicKeys:
    """Published verification keys per tenant, cached briefly; an unknown kid re-reads once."""

    def __init__(self, db: AsyncDatabase[Document], ttl: float = 60.0, refresh_gap: float = 5.0):
        self._collection = db[Collections.SIGNING_KEYS]
        self._ttl = ttl
        self._refresh_gap = refresh_gap
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def _load(self, tenant_id: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        keys: dict[str, Any] = {}
        async for doc in self._collection.find(
            {"tenant_id": tenant_id, "status": {"$in": ["current", "previous"]}}
        ):
            until = doc.get("publish_until")
            if doc["status"] == "previous" and until is not None and until < now:
                continue
            keys[doc["kid"]] = jwt.PyJWK.from_dict(doc["public_jwk"], algorithm=ALGORITHM).key
        self._cache[tenant_id] = (time.monotonic(), keys)
        return keys

    async def key(self, tenant_id: str, kid: str) -> Any | None:
        cached = self._cache.get(tenant_id)
        age = time.monotonic() - cached[0] if cached else None
        if cached is None or age is None or age > self._ttl:
            return (await self._load(tenant_id)).get(kid)
        found = cached[1].get(kid)
        if found is None and age > self._refresh_gap:  # a key rotated in since the last load
            found = (await self._load(tenant_id)).get(kid)
        return found


def machine_client_id(claims: Claims) -> str:
    """The client a `client_credentials` token was minted for (its `sub` is
    `<client_id>@clients` and `client_id`/`azp` name the same client); raises 401
    `invalid_token` for any other token, a user's above all."""
    client_id = claims.get("client_id", claims.get("azp"))
    if (
        claims.get("gty") != CLIENT_CREDENTIALS_GTY
        or not isinstance(client_id, str)
        or not client_id
        or claims.get("sub") != f"{client_id}@clients"
        or claims.get("azp", client_id) != client_id
    ):
        raise _invalid_token("Only a client's own client-credentials token is accepted")
    return client_id


class ManagementCallers:
    """Whether a machine client may still call the Management API, read on every call (no
    cache: a deleted client or revoked grant must stop working at once, and this API is not a
    hot path). Two indexed reads: the client is live, and its Management API client grant."""

    def __init__(self, db: AsyncDatabase[Document]):
        self._db = db

    async def granted_scopes(self, tenant_id: str, client_id: str) -> frozenset[str] | None:
        """The Management API scopes `client_id` holds now; None when the client is gone or
        has no grant."""
        client = await self._db[Collections.CLIENTS].find_one(
            {"_id": client_id, "tenant_id": tenant_id, "reaped_at": None}, {"_id": 1}
        )
        if client is None:
            return None
        grant = await self._db[Collections.CLIENT_GRANTS].find_one(
            {"tenant_id": tenant_id, "client_id": client_id, "audience": MANAGEMENT_API},
            {"scope": 1},
        )
        if grant is None:
            return None
        return frozenset(str(scope) for scope in grant.get("scope") or ())


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        # RFC 6750 §3.1: no credentials at all get a bare challenge, without an error code.
        raise ManagementApiError(
            401, "Missing authentication", "invalid_token", {"WWW-Authenticate": "Bearer"}
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    # RFC 6750 §2.1 b64token: printable ASCII only; anything else cannot be one of ours.
    if scheme.lower() != "bearer" or not token or not (token.isascii() and token.isprintable()):
        raise _invalid_token("Missing or malformed bearer token")
    return token


async def verify_access_token(
    token: str, keys: TenantPublicKeys, tenant_id: str, issuer: str, audience: str | None
) -> Claims:
    """The claims of one of this tenant's access tokens (RFC 9068), verified: RS256 under one
    of the tenant's published keys, `typ` at+jwt, `iss`, `exp`/`iat`/`nbf` and, unless
    `audience` is None (introspection and revocation, which judge the audience themselves),
    `aud`. Raises ManagementApiError 401 `invalid_token`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise _invalid_token("Malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise _invalid_token("Unsupported token algorithm")
    # RFC 9068 §4: an access token says so, which keeps an ID token from being replayed here.
    if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
        raise _invalid_token(NOT_AN_ACCESS_TOKEN)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid_token("Token has no key id")
    key = await keys.key(tenant_id, kid)
    if key is None:
        raise _invalid_token("Unknown signing key")
    try:
        claims: Claims = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={
                "require": ["exp", "iat", "iss", "aud", "sub"],
                "verify_aud": audience is not None,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise _invalid_token("Token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise _invalid_token("Invalid audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise _invalid_token("Invalid issuer") from exc
    except jwt.InvalidTokenError as exc:
        raise _invalid_token("Invalid token") from exc
    return claims


def granted_scopes(claims: Claims) -> frozenset[str]:
    scope = claims.get("scope", "")
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


KEYS = web.AppKey("management_public_keys", TenantPublicKeys)
CALLERS = web.AppKey("management_callers", ManagementCallers)
CLAIMS: web.RequestKey[Claims] = web.RequestKey("management_claims")


def setup_management_auth(app: web.Application, db: Callable[[], AsyncDatabase[Document]]) -> None:
    async def keys_ctx(app: web.Application) -> Any:
        app[KEYS] = TenantPublicKeys(db())
        app[CALLERS] = ManagementCallers(db())
        yield

    app.cleanup_ctx.append(keys_ctx)


def requires_scope(scope: str) -> Callable[[Handler], Handler]:
    """Decorator: the handler runs only for a valid Management API token with `scope`, of a
    live client whose client grant still includes `scope` (see the module docstring)."""

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            origin, tenant_id = request[ORIGIN], request[TENANT].id
            claims = await verify_access_token(
                bearer_token(request),
                request.app[KEYS],
                tenant_id,
                origin.issuer,
                origin.management_audience,
            )
            client_id = machine_client_id(claims)
            settings = request.app[SETTINGS]
            if await denied(request.app[REDIS], settings.redis_prefix, claims.get("jti")):
                raise _invalid_token("Token revoked")  # RFC 7009 at /oauth/revoke
            held = await request.app[CALLERS].granted_scopes(tenant_id, client_id)
            if held is None:
                raise _invalid_token("The client no longer holds a grant for this API")
            if scope not in granted_scopes(claims) or scope not in held:
                raise _insufficient_scope(scope)
            request[CLAIMS] = claims
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return decorate
