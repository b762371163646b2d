"""JWT client authentication (RFC 7523 §2.2, §3; OIDC Core §9 `private_key_jwt`).

The client sends `client_assertion_type` = `urn:ietf:params:oauth:client-assertion-type:
jwt-bearer` and `client_assertion`, a JWT it signed with one of the keys it registered
(`jwks`). Checked as every JWT this provider trusts:

- the algorithm is the one the client registered (`token_endpoint_auth_signing_alg`), else one
  of `CLIENT_ASSERTION_ALGS` (asymmetric only: never `none` or an HMAC);
- the key is the registered key named by `kid` (or, without a `kid`, any registered key of
  the algorithm's type), from `jwks` or the client's `jwks_uri` (`client_jwks`);
- `iss` and `sub` are the client's id; `aud` names this provider: its issuer, its token
  endpoint, or the endpoint the assertion was sent to;
- `exp` is required, not past (a small leeway) and at most `MAX_LIFETIME` seconds ahead;
- `jti` is required and used once within the assertion's lifetime (Redis `SET NX`), so a
  captured assertion cannot be replayed.

Every failure is `invalid_client` (RFC 6749 §5.2), with a description that names the rule.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import jwt

from oidc_common.claims import audiences as claimed_audiences
from oidc_common.client_metadata import CLIENT_ASSERTION_ALGS
from oidc_common.errors import OAuthError

from ..redis_store import RedisStore

JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME: Final = 600  # seconds between now and an assertion's `exp`
LEEWAY: Final = 30
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
MAX_ASSERTION_LENGTH: Final = 8192


def _refused(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


def assertion_client_id(assertion: str) -> str:
    """The client an assertion says it is from (`iss`, which must equal `sub`), unverified:
    only to look the client up. Raises OAuthError `invalid_client`."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise _refused("client_assertion is too long")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise _refused("client_assertion is not a JWT") from exc
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or issuer != subject:
        raise _refused("client_assertion must have iss and sub both the client_id")
    return issuer


def _keys(jwks: object, kid: object, alg: str) -> list[Any]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    wanted_type = _KEY_TYPES[alg[:2]]
    found = []
    for jwk in keys if isinstance(keys, list) else ():
        if not isinstance(jwk, Mapping) or jwk.get("kty") != wanted_type:
            continue
        if isinstance(kid, str) and jwk.get("kid") != kid:
            continue
        if jwk.get("use") not in (None, "sig"):
            continue
        try:
            found.append(jwt.PyJWK(dict(jwk), algorithm=alg).key)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return found


class UsedAssertions(RedisStore):
    """The `jti`s of accepted client assertions, each until its assertion expires."""

    namespace = "assertion-jti"

    async def first_use(self, client_id: str, jti: str, expires_at: int) -> bool:
        digest = hashlib.sha256(f"{client_id}\n{jti}".encode()).hexdigest()
        ttl = max(expires_at - int(time.time()) + LEEWAY, 1)
        return bool(await self._redis.set(self.key(digest), "1", nx=True, ex=ttl))


def assertion_kid(assertion: str) -> object:
    """The `kid` an assertion's header names (unverified), to choose or fetch keys."""
    try:
        return jwt.get_unverified_header(assertion).get("kid")
    except jwt.InvalidTokenError as exc:
        raise _refused("client_assertion is not a JWT") from exc


async def verify_client_assertion(
    assertion: str,
    client_id: str,
    metadata: Mapping[str, Any],
    jwks: object,
    audiences: Iterable[str],
    used: UsedAssertions,
) -> None:
    """Accept `assertion` as `client_id`'s authentication, or raise OAuthError
    `invalid_client` (see the module docstring)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError as exc:
        raise _refused("client_assertion is not a JWT") from exc
    registered_alg = metadata.get("token_endpoint_auth_signing_alg")
    allowed = {registered_alg} if isinstance(registered_alg, str) else set(CLIENT_ASSERTION_ALGS)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed & CLIENT_ASSERTION_ALGS:
        raise _refused(f"client_assertion must be signed with {', '.join(sorted(allowed))}")
    keys = _keys(jwks, header.get("kid"), alg)
    if not keys:
        raise _refused("No registered key of this client matches the client_assertion")
    claims: dict[str, Any] | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                assertion,
                key=key,
                algorithms=[alg],
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_aud": False},
            )
            break
        except jwt.ExpiredSignatureError as exc:
            raise _refused("client_assertion has expired") from exc
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as exc:
            raise _refused(f"client_assertion is not valid: {exc}") from exc
    if claims is None:
        raise _refused("client_assertion signature does not verify")
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise _refused("client_assertion must have iss and sub both the client_id")
    if not set(claimed_audiences(claims)) & set(audiences):
        raise _refused("client_assertion aud must name this provider's token endpoint")
    exp = claims["exp"]
    if not isinstance(exp, int) or exp > int(time.time()) + MAX_LIFETIME + LEEWAY:
        raise _refused(f"client_assertion must expire within {MAX_LIFETIME} seconds")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _refused("client_assertion needs a jti")
    if not await used.first_use(client_id, jti, exp):
        raise _refused("client_assertion was already used (jti)")
