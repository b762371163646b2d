"""`POST /oauth/token` (RFC 6749 §3.2), as the sequence of its checks.

1. read the body: form (or JSON), each parameter once            request.py
2. grant_type present and supported                              RFC 6749 §5.2
3. authenticate the client within the tenant                     client_auth.py
4. the client may use this grant                                 RFC 6749 §5.2
5. the grant itself (its tokens not yet handed out)              grants/*.py
6. record the client's use, only while it is live                client_auth.py
7. answer without caching                                        RFC 6749 §5.1

Only a grant that succeeded counts as use (a failed request must not keep a client from
being reaped as never used), and nothing is handed out to a client reaped in the meantime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from oidc_common.errors import NO_STORE, OAuthError, json_response

from .client_auth import AuthenticatedClient, authenticate, mark_used
from .grants import authorization_code, client_credentials, refresh_token
from .request import TokenRequest, read_token_request

Grant = Callable[[web.Request, AuthenticatedClient, TokenRequest], Awaitable[dict[str, Any]]]

GRANTS: Mapping[str, Grant] = {
    client_credentials.GRANT_TYPE: client_credentials.client_credentials,
    authorization_code.GRANT_TYPE: authorization_code.authorization_code,
    refresh_token.GRANT_TYPE: refresh_token.refresh_token,
}


def supported_grant(params: TokenRequest) -> tuple[str, Grant]:
    grant_type = params.require("grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise OAuthError(
            "unsupported_grant_type", f"Supported grant types: {', '.join(sorted(GRANTS))}"
        )
    return grant_type, grant


def check_grant_allowed(client: AuthenticatedClient, grant_type: str) -> None:
    if grant_type not in client.grant_types:
        raise OAuthError(
            "unauthorized_client", f"The client is not allowed to use the {grant_type} grant"
        )


async def token_endpoint(request: web.Request) -> web.Response:
    params = await read_token_request(request)
    grant_type, grant = supported_grant(params)
    client = await authenticate(request, params)
    check_grant_allowed(client, grant_type)
    body = await grant(request, client, params)
    await mark_used(request, client)
    return json_response(body, headers=NO_STORE)


def token_routes() -> list[web.RouteDef]:
    return [web.post("/oauth/token", token_endpoint)]
