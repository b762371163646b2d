"""`GET`/`POST /authorize` (RFC 6749 §3.1, OIDC Core §3.1.2.1), as the sequence of its checks.

Shown to the user as a page (nothing is sent to an unverified redirect URI):
1. parameters readable                                            parameters.py
2. client_id names a live client of the tenant                    request.check_client
3. redirect_uri registered (exact; loopback any port, native)     oidc_common.redirect_uris
Returned to the client through its response mode, with `state` and `iss`:
4. no repeated parameter, no request objects                      request.check_plain_request
5. response_type supported and registered for the client          request.check_response_type
6. response_mode allowed for it                                   request.check_response_mode
7. openid scope and nonce whenever an ID token is returned        request.check_openid
8. prompt, max_age                                                request.check_prompt/_max_age
9. PKCE S256 (public clients; all while require_pkce is on)       pkce.py
10. audience / resource (RFC 8707) names an API of the tenant      targets.py
11. scopes narrowed to what can be granted                        request.grantable_scopes
Then sign-in, consent and the response                            flow.py
"""

from __future__ import annotations

import logging

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.service import DB
from oidc_common.settings_cache import SettingsUnavailable
from oidc_common.tenancy import ORIGIN, TENANT

from ..client_id_metadata.errors import MetadataDocumentError
from ..client_id_metadata.resolver import metadata_document_client
from ..interaction.pages import error_page
from ..registered_clients import RegisteredClient, find_live_client
from ..resources import TENANT_SETTINGS
from ..scopes import parse_scope
from ..targets import requested_api
from . import request as checks
from .flow import advance
from .parameters import Parameters, UnreadableRequest, read_parameters
from .request import AuthorizationRequest, PageError
from .response_modes import error_response

log = logging.getLogger(__name__)


async def tenant_policy(request: web.Request) -> RegistrationPolicy:
    """The tenant's policy; its defaults when the settings cannot be read (fail closed: PKCE
    required, no prefix resources, no metadata documents)."""
    try:
        snapshot = await request.app[TENANT_SETTINGS].read(request[TENANT].id)
    except SettingsUnavailable as exc:
        log.warning("tenant settings unavailable; default policy", extra={"error": str(exc)})
        return RegistrationPolicy()
    return RegistrationPolicy.from_settings(snapshot.settings if snapshot else {})


async def checked_request(
    request: web.Request, params: Parameters, client: RegisteredClient, redirect_uri: str
) -> AuthorizationRequest:
    """Steps 4-11; raises OAuthError with the first failure."""
    checks.check_plain_request(params)
    words = checks.check_response_type(params, client)
    response_mode = checks.check_response_mode(params, words)
    requested = parse_scope(params.get("scope"))
    nonce = checks.check_openid(params, words, requested)
    prompt = checks.check_prompt(params)
    max_age = checks.check_max_age(params)
    policy = await tenant_policy(request)
    challenge = checks.check_pkce(params, words, client, require_pkce=policy.require_pkce)
    api = await requested_api(
        request.app[DB],
        client.tenant_id,
        policy,
        request[ORIGIN].issuer,
        params.get("audience"),
        params.get_all("resource"),
    )
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        response_type=checks.canonical(words),
        response_mode=response_mode,
        scopes=checks.grantable_scopes(requested, client, words, api),
        audience=api.identifier if api is not None else None,
        state=params.get("state"),
        nonce=nonce,
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        code_challenge=challenge,
    )


async def authorize(request: web.Request) -> web.Response:
    try:
        params = await read_parameters(request)
        client_id = checks.check_single(params, "client_id")
        found = await find_live_client(request.app[DB], request[TENANT].id, client_id)
        if found is None:  # an https client_id may name a Client ID Metadata Document
            found = await metadata_document_client(request, client_id)
        client = checks.check_client(found)
        redirect_uri = checks.check_redirect_uri(
            client, checks.check_single(params, "redirect_uri")
        )
        checks.check_state(params)
    except UnreadableRequest as exc:
        return await error_page(request, "Invalid request", str(exc))
    except MetadataDocumentError as exc:
        return await error_page(request, exc.title, exc.detail)
    except PageError as exc:
        return await error_page(request, exc.title, exc.detail, exc.status)
    target = checks.error_target(params, redirect_uri)
    try:
        return await advance(
            request, await checked_request(request, params, client, redirect_uri), client
        )
    except OAuthError as exc:
        return await error_response(request, target, exc)
    except PageError as exc:
        return await error_page(request, exc.title, exc.detail, exc.status)


def authorization_routes() -> list[web.RouteDef]:
    return [web.get("/authorize", authorize), web.post("/authorize", authorize)]
