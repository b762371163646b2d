"""The authorization code grant (RFC 6749 §4.1.3): redeeming a code /authorize issued.

Codes live in Redis under `{prefix}authcode:{code}` with a short TTL. The /authorize flow does
not issue codes yet, so every code is unknown; the exchange proper (client and redirect_uri
binding, RFC 7636 §4.6 code_verifier, single use with GETDEL, the tokens) lands with it.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from oidc_common.errors import OAuthError
from oidc_common.service import REDIS, SETTINGS

from .client_auth import AuthenticatedClient
from .token_request import TokenRequest

GRANT_TYPE = "authorization_code"

# RFC 6749 Appendix A.11: code = 1*VSCHAR. Bounded so a hostile body cannot make huge keys.
_CODE = re.compile(r"^[\x20-\x7e]{1,512}$")


def code_key(prefix: str, code: str) -> str:
    return f"{prefix}authcode:{code}"


async def stored_code(redis: Redis, prefix: str, code: str) -> bytes | str | None:
    if not _CODE.match(code):
        return None
    value: bytes | str | None = await redis.get(code_key(prefix, code))
    return value


async def authorization_code(
    request: web.Request, client: AuthenticatedClient, params: TokenRequest
) -> dict[str, Any]:
    code = params.require("code")
    record = await stored_code(request.app[REDIS], request.app[SETTINGS].redis_prefix, code)
    if record is None:
        raise OAuthError("invalid_grant", "Invalid authorization code")
    # Only /authorize writes these records, and it does not exist yet.
    raise OAuthError("invalid_grant", "Authorization code exchange is not available yet")
