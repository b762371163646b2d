"""The client credentials grant (RFC 6749 §4.4): a confidential client's token for an API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.resource_indicators import parse_resource
from oidc_common.service import DB, SETTINGS
from oidc_common.tenancy import ORIGIN, TENANT

from ...resources import KEYSTORE
from ...scopes import narrow_scope
from ..access_tokens import mint_access_token
from ..client_auth import AuthenticatedClient
from ..client_grants import granted_scopes
from ..request import TokenRequest

GRANT_TYPE = "client_credentials"


async def client_credentials(
    request: web.Request, client: AuthenticatedClient, params: TokenRequest
) -> dict[str, Any]:
    # RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    # clients."
    if client.is_public:
        raise OAuthError(
            "unauthorized_client", "A public client cannot use the client_credentials grant"
        )
    # Auth0 names the API with `audience` (required for this grant); RFC 8707 with `resource`.
    audience, resource = params.get("audience"), params.get("resource")
    if resource is not None:
        parse_resource(resource)
        if audience is not None and audience != resource:
            raise OAuthError("invalid_request", "audience and resource name different APIs")
        audience = resource
    if audience is None:
        raise OAuthError("invalid_request", "Missing required parameter: audience (or resource)")
    origin = request[ORIGIN]
    tenant_id = request[TENANT].id
    try:
        granted = await granted_scopes(
            request.app[DB], tenant_id, client.client_id, audience, origin.management_audience
        )
    except OAuthError as exc:
        if resource is None:
            raise
        # RFC 8707 §2: a resource the client may not use.
        raise OAuthError("invalid_target", exc.description) from exc
    scopes = narrow_scope(granted, params.get("scope"))
    ttl = request.app[SETTINGS].access_token_ttl
    key = await request.app[KEYSTORE].signing_key(tenant_id)
    token = mint_access_token(
        key,
        issuer=origin.issuer,
        audience=audience,
        client_id=client.client_id,
        scopes=scopes,
        ttl=ttl,
    )
    # RFC 6749 §5.1
    return {
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "scope": token.scope,
    }
