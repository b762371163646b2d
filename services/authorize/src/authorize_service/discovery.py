"""`GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`:
the provider's metadata.

OpenID Connect Discovery 1.0 §3 and RFC 8414 §2, every URL built on the tenant's external
origin. `registration_endpoint` is advertised only while the tenant has open dynamic client
registration on; if the setting cannot be read it is left out (fail closed). So is
`client_id_metadata_document_supported` (draft-ietf-oauth-client-id-metadata-document-02
§6), advertised only while the tenant's policy allows metadata documents.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from oidc_common.client_metadata import CLIENT_ASSERTION_ALGS, TOKEN_ENDPOINT_AUTH_METHODS
from oidc_common.errors import json_response
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.settings_cache import SettingsSnapshot, SettingsUnavailable
from oidc_common.signing_keys import SIGNING_ALG
from oidc_common.tenancy import ORIGIN, TENANT

from .authorization.request import PROMPTS, RESPONSE_MODES, RESPONSE_TYPE_NAMES
from .oidc_scopes import CLAIMS_BY_SCOPE, OIDC_SCOPES
from .resources import TENANT_SETTINGS

log = logging.getLogger(__name__)

# Short, so a change of the registration flag shows within a minute; browsers (SPAs
# discovering the provider) may read it cross-origin.
DISCOVERY_HEADERS = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}

# The claims this provider puts in ID tokens and /userinfo answers, nothing it never sends.
CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    *sorted({claim for claims in CLAIMS_BY_SCOPE.values() for claim in claims}),
)


def provider_metadata(
    issuer: str, *, registration_enabled: bool, client_id_metadata_documents: bool = False
) -> dict[str, Any]:
    """The metadata document for `issuer` (which ends with a slash)."""
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}authorize",
        "token_endpoint": f"{issuer}oauth/token",
        "userinfo_endpoint": f"{issuer}userinfo",
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        # RFC 7009 and RFC 7662, as RFC 8414 §2 names them; authenticated as at the token
        # endpoint.
        "revocation_endpoint": f"{issuer}oauth/revoke",
        "introspection_endpoint": f"{issuer}oauth/introspect",
        # RP-Initiated Logout 1.0 §2.1
        "end_session_endpoint": f"{issuer}oidc/logout",
        # Back-Channel Logout 1.0 §2.1: Logout Tokens carry `sid` (and `sub`).
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # Front-Channel Logout 1.0 §3: frames get `iss` and `sid`.
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }
    if registration_enabled:
        metadata["registration_endpoint"] = f"{issuer}oidc/register"
    metadata.update(
        {
            "scopes_supported": list(OIDC_SCOPES),
            "response_types_supported": list(RESPONSE_TYPE_NAMES),
            "response_modes_supported": list(RESPONSE_MODES),
            "prompt_values_supported": sorted(PROMPTS),
            "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
            "grant_types_supported": [
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "token_endpoint_auth_methods_supported": sorted(TOKEN_ENDPOINT_AUTH_METHODS),
            # OIDC Discovery §3 / RFC 8414 §2: the algorithms of private_key_jwt assertions.
            "token_endpoint_auth_signing_alg_values_supported": sorted(CLIENT_ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": sorted(TOKEN_ENDPOINT_AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": sorted(
                TOKEN_ENDPOINT_AUTH_METHODS - {"none"}
            ),
            "claims_supported": list(CLAIMS_SUPPORTED),
            "code_challenge_methods_supported": ["S256"],  # RFC 7636 §4.2, no `plain`
            # request_uri_parameter_supported defaults to true (Discovery §3): say no.
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
        }
    )
    if client_id_metadata_documents:
        metadata["client_id_metadata_document_supported"] = True
    return metadata


async def tenant_settings(request: web.Request) -> SettingsSnapshot | None:
    tenant_id = request[TENANT].id
    try:
        return await request.app[TENANT_SETTINGS].read(tenant_id)
    except SettingsUnavailable as exc:
        log.warning(
            "tenant settings unavailable; registration_endpoint omitted",
            extra={"tenant_id": tenant_id, "error": str(exc)},
        )
        return None


async def openid_configuration(request: web.Request) -> web.Response:
    snapshot = await tenant_settings(request)
    settings = snapshot.settings if snapshot is not None else {}
    metadata = provider_metadata(
        request[ORIGIN].issuer,
        registration_enabled=snapshot is not None and snapshot.registration_enabled,
        client_id_metadata_documents=(
            RegistrationPolicy.from_settings(settings).client_id_metadata_documents
        ),
    )
    return json_response(metadata, headers=DISCOVERY_HEADERS)


def discovery_routes() -> list[web.RouteDef]:
    """OIDC Discovery §4 and RFC 8414 §3: one document at both well-known URLs (the issuer's
    path is `/`, so RFC 8414 §3.1 puts its document at the root's well-known URL). MCP clients
    ask for the RFC 8414 one first."""
    return [
        web.get("/.well-known/openid-configuration", openid_configuration),
        web.get("/.well-known/oauth-authorization-server", openid_configuration),
    ]
