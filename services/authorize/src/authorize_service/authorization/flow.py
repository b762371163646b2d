"""What happens once an authorization request is checked: sign-in, consent, response.

`advance` is the one decision point, entered from `/authorize` and again after the login
page: who is signed in (a fresh login in this interaction, else a session that satisfies
`prompt` and `max_age`), whether consent is needed, and then either a page or `complete`.
`prompt=none` never shows a page (OIDC Core §3.1.2.6: `login_required`, `consent_required`).
"""

from __future__ import annotations

import time

from aiohttp import web

from oidc_common.errors import NO_STORE, OAuthError
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..grants.repository import ConsentKey
from ..interaction.session_lifetimes import session_lifetimes
from ..interaction.store import INTERACTION_TTL, Interaction, binding_cookie
from ..registered_clients import RegisteredClient, record_client_use
from ..resources import CODES, GRANTS, INTERACTIONS, REVOCATIONS, SESSIONS, USERS
from ..tokens.authorization_codes import CodeGrant
from ..tokens.issuance import UserGrant, issue_tokens, new_grant_id
from ..users.repository import User
from .request import AuthorizationRequest, PageError
from .response_modes import authorization_response


async def _signed_in_user(
    request: web.Request, areq: AuthorizationRequest, interaction: Interaction | None
) -> tuple[str, int] | None:
    if interaction is not None and interaction.user_id is not None:
        return interaction.user_id, int(interaction.auth_time or 0)  # logged in just now
    if "login" in areq.prompt:
        return None
    session = await request.app[SESSIONS].current(
        request, request[TENANT].id, await session_lifetimes(request)
    )
    if session is None:
        return None
    if areq.max_age is not None and time.time() - session.auth_time > areq.max_age:
        return None  # OIDC Core §3.1.2.1: authentication too old, sign in again
    return session.user_id, session.auth_time


async def needs_consent(
    request: web.Request, areq: AuthorizationRequest, client: RegisteredClient, user_id: str
) -> bool:
    """Third-party clients need the user's consent unless it is remembered for these scopes
    and audience; `prompt=consent` always asks. First-party clients never ask."""
    if client.is_first_party:
        return False
    if "consent" in areq.prompt:
        return True
    key = ConsentKey(client.tenant_id, user_id, client.client_id, areq.audience)
    return not await request.app[GRANTS].consented(key, areq.scopes)


async def _to_page(
    request: web.Request,
    page: str,
    areq: AuthorizationRequest,
    interaction: Interaction | None,
    user: tuple[str, int] | None = None,
) -> web.Response:
    """Redirect the browser to the `/u/{page}` of an interaction (started here if new)."""
    if interaction is None:
        interaction, binding = await request.app[INTERACTIONS].start(
            request[TENANT].id, areq, *(user or (None, None))
        )
        response = web.Response(
            status=302, headers={"Location": f"/u/{page}?state={interaction.id}", **NO_STORE}
        )
        response.set_cookie(
            binding_cookie(interaction.id),
            binding,
            max_age=INTERACTION_TTL,
            path="/u/",
            httponly=True,
            samesite="Lax",
            secure=request[ORIGIN].scheme == "https",
        )
        return response
    # Answering a page's POST: 303 makes the browser GET the next page (RFC 9110 §15.4.4).
    return web.Response(
        status=303, headers={"Location": f"/u/{page}?state={interaction.id}", **NO_STORE}
    )


async def advance(
    request: web.Request,
    areq: AuthorizationRequest,
    client: RegisteredClient,
    interaction: Interaction | None = None,
) -> web.Response:
    """The next step for a checked request: the login page, the consent page, or the
    response to the client. Raises OAuthError for `prompt=none` failures."""
    signed_in = await _signed_in_user(request, areq, interaction)
    user = None
    if signed_in is not None:
        user = await request.app[USERS].get(request[TENANT].id, signed_in[0])
    if signed_in is None or user is None:
        if "none" in areq.prompt:
            raise OAuthError("login_required", "The user is not signed in")
        return await _to_page(request, "login", areq, interaction)
    if await needs_consent(request, areq, client, user.user_id):
        if "none" in areq.prompt:
            raise OAuthError("consent_required", "The user has not consented to this client")
        return await _to_page(request, "consent", areq, interaction, signed_in)
    if interaction is not None and not await request.app[INTERACTIONS].finish(interaction):
        raise PageError(  # the login form was submitted twice: the first one answered
            "Sign-in expired", "This sign-in was already completed. Go back to the application."
        )
    return await complete(request, areq, client, user, signed_in[1])


async def _session_signed_in_to(
    request: web.Request, client: RegisteredClient, user: User
) -> str | None:
    """Record `client` in the user's login session (a logout tells it) and return the
    session's `sid` for the ID token; None without a session of this user."""
    sessions = request.app[SESSIONS]
    session = await sessions.current(request, request[TENANT].id, await session_lifetimes(request))
    if session is None or session.user_id != user.user_id:
        return None
    await sessions.signed_in_to(request, client.client_id)
    return session.sid


async def complete(
    request: web.Request,
    areq: AuthorizationRequest,
    client: RegisteredClient,
    user: User,
    auth_time: int,
) -> web.Response:
    """Issue what `response_type` asks for and send it to the client.

    The client's use is recorded first (the reaper must never delete a client that signs
    users in); a client reaped meanwhile gets nothing. A metadata-document client has no
    record to update (nor a reaper).
    """
    if client.document_host is None and not await record_client_use(
        request.app[DB], client.tenant_id, client.client_id
    ):
        raise PageError(
            "Unknown application",
            "This application was removed. Ask its developer to register it again.",
        )
    sid = await _session_signed_in_to(request, client, user)
    if not client.is_first_party:  # the connected-apps page shows when it was last used
        await request.app[GRANTS].used(
            ConsentKey(client.tenant_id, user.user_id, client.client_id, areq.audience)
        )
    grant = UserGrant(
        tenant_id=client.tenant_id,
        client_id=client.client_id,
        user=user,
        scopes=areq.scopes,
        audience=areq.audience,
        nonce=areq.nonce,
        auth_time=auth_time,
        grant_id=new_grant_id(),
        sid=sid,
    )
    params: dict[str, str | int] = {}
    if areq.issues_code:
        params["code"] = await request.app[CODES].issue(
            CodeGrant(
                tenant_id=client.tenant_id,
                client_id=client.client_id,
                redirect_uri=areq.redirect_uri,
                code_challenge=areq.code_challenge,
                user_id=user.user_id,
                scopes=list(areq.scopes),
                audience=areq.audience,
                nonce=areq.nonce,
                auth_time=auth_time,
                sid=sid,
                # Past the second of any taking back of this user's access to the client, so
                # the code reads as issued after it (`Revocations.taken_back_since`).
                issued_at=await request.app[REVOCATIONS].issuable_at(
                    client.tenant_id, user.user_id, client.client_id
                ),
            )
        )
    if areq.issues_access_token or areq.issues_id_token:
        tokens = await issue_tokens(
            request,
            grant,
            access_token=areq.issues_access_token,
            id_token=areq.issues_id_token,
            refresh_token=False,  # never through the front channel (RFC 6749 §4.2.2)
        )
        params.update(tokens)
    return await authorization_response(
        request, areq.redirect_uri, areq.response_mode, params, areq.state
    )
