"""`/oidc/logout` (OpenID Connect RP-Initiated Logout 1.0, the `end_session_endpoint`) and
Auth0's legacy `/v2/logout` (`returnTo`, `client_id`).

1. Read the request (GET query or POST form); each parameter at most once.
2. `id_token_hint`, when given, must be an ID token of this tenant (`hints`); `client_id`,
   when given with it, one of its audiences. A bad hint is an error page, never a redirect.
3. `post_logout_redirect_uri` is honoured only when the client (named by `client_id` or the
   hint) registered it exactly (`post_logout_redirect_uris`, §3.1), otherwise an error page;
   and only with an `id_token_hint` (§3): without one the user stays on the logged-out page.
4. With a valid hint naming the signed-in user's session (its `sid`), the session ends at
   once; otherwise a confirmation page asks first (`pending`: CSRF-protected, bound to this
   session). No session cookie: only the hint's session, if any, ends.
5. Ending the session clears its cookie and tells the clients it signed in to (`notices`);
   then the browser goes to the `post_logout_redirect_uri` with `state`, or sees the
   logged-out page. `ui_locales` and `logout_hint` are accepted (one language here; the
   session says who is signed in).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from oidc_common.errors import NO_STORE
from oidc_common.management_auth import KEYS
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..authorization.parameters import UnreadableRequest, read_form, read_parameters
from ..authorization.request import PageError, check_state
from ..interaction.pages import error_page, render
from ..interaction.session_lifetimes import session_lifetimes
from ..registered_clients import RegisteredClient, find_live_client
from ..resources import PENDING_LOGOUTS, SESSIONS
from .frontchannel import frame_origin, frontchannel_frames
from .hints import IdTokenHint, InvalidHint, verify_hint
from .notices import session_ended
from .pending import PendingLogout

log = logging.getLogger(__name__)

ONCE = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint")
_TITLE = "Sign-out failed"


class LogoutError(Exception):
    """A logout request refused on a page (never a redirect)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _with_state(uri: str, state: str | None) -> str:
    if state is None:
        return uri
    parts = urlsplit(uri)
    query = (
        f"{parts.query}&{urlencode({'state': state})}"
        if parts.query
        else urlencode({"state": state})
    )
    return urlunsplit(parts._replace(query=query))


async def _client(request: web.Request, client_id: str) -> RegisteredClient:
    client = await find_live_client(request.app[DB], request[TENANT].id, client_id)
    if client is None:
        raise LogoutError("The application that sent you here is not registered here.")
    return client


def _registered_logout_uri(client: RegisteredClient, uri: str) -> str:
    registered = client.metadata.get("post_logout_redirect_uris") or ()
    if uri not in registered:  # exact, as redirect URIs (RP-Initiated Logout §3.1)
        raise LogoutError(
            "The post_logout_redirect_uri is not one this application registered, so you "
            "cannot be sent back to it. You are still signed in."
        )
    return uri


async def _hint(request: web.Request, token: str | None) -> IdTokenHint | None:
    if token is None:
        return None
    try:
        return await verify_hint(
            token, request.app[KEYS], request[TENANT].id, request[ORIGIN].issuer
        )
    except InvalidHint as exc:
        raise LogoutError(f"{exc}. You are still signed in.") from exc


async def _finish(
    request: web.Request,
    redirect_uri: str | None,
    state: str | None,
    hint: IdTokenHint | None = None,
) -> web.StreamResponse:
    """End the browser's session, tell its clients (back-channel, then the front channel's
    frames on the page), then redirect or show the logged-out page. With frames to show, the
    page goes on to the `post_logout_redirect_uri` by itself a moment later."""
    sessions = request.app[SESSIONS]
    ended = await sessions.end(request)
    if ended is None and hint is not None and hint.sid is not None:
        # No cookie came (a cross-site POST): the hint's session ends all the same.
        ended = await sessions.end_sid(request[TENANT].id, hint.sid, hint.subject)
    frames: list[str] = []
    if ended is not None:
        await session_ended(request, ended)
        frames = await frontchannel_frames(request, ended, request[ORIGIN].issuer)
    target = _with_state(redirect_uri, state) if redirect_uri is not None else None
    response: web.StreamResponse
    if target is not None and not frames:
        response = web.Response(status=303, headers={"Location": target, **NO_STORE})
    else:
        context = {"frontchannel_frames": frames, "continue_to": target}
        origins = sorted({frame_origin(frame) for frame in frames})
        response = await render(request, "logged_out.html", context, frame_origins=origins)
    sessions.forget(request, response)
    return response


async def _logout_request(request: web.Request, legacy: bool) -> web.StreamResponse:
    params = await read_parameters(request)
    if params.repeated:
        raise LogoutError("A parameter is included more than once.")
    try:
        check_state(params)  # comes back to the client byte for byte, or not at all
    except PageError as exc:
        raise LogoutError(exc.detail) from exc
    if legacy:  # Auth0's /v2/logout: returnTo, client_id
        redirect, state = params.get("returnTo"), None
    else:
        redirect, state = params.get("post_logout_redirect_uri"), params.get("state")
    hint = await _hint(request, params.get("id_token_hint"))
    client_id = params.get("client_id")
    if hint is not None and client_id is not None and not hint.names(client_id):
        raise LogoutError("The id_token_hint was not issued to this client_id.")
    if client_id is None and hint is not None and len(hint.audiences) == 1:
        client_id = hint.audiences[0]
    if redirect is not None:
        if client_id is None:
            raise LogoutError("A post_logout_redirect_uri needs client_id or id_token_hint.")
        redirect = _registered_logout_uri(await _client(request, client_id), redirect)
        if hint is None:
            # §3: without an ID token for the client, no post-logout redirection (anyone may
            # register a client whose "logout URI" is any site).
            redirect, state = None, None
    sessions = request.app[SESSIONS]
    session = await sessions.current(request, request[TENANT].id, await session_lifetimes(request))
    if session is None:  # no session cookie: only the hint's session, if any, can end
        return await _finish(request, redirect, state, hint)
    if hint is not None and hint.subject == session.user_id and hint.sid == session.sid:
        return await _finish(request, redirect, state, hint)
    pending = await request.app[PENDING_LOGOUTS].start(
        request[TENANT].id, session.sid, client_id, redirect, state
    )
    return await _confirmation_page(request, pending, client_id)


async def _confirmation_page(
    request: web.Request, pending: PendingLogout, client_id: str | None
) -> web.Response:
    client = (
        await find_live_client(request.app[DB], request[TENANT].id, client_id)
        if client_id is not None
        else None
    )
    context = {
        "logout_id": pending.id,
        "csrf_token": pending.csrf,
        "client_name": client.name if client is not None else None,
        "unverified": client.dynamic if client is not None else False,
    }
    # Chromium applies the page's form-action to the redirect after the POST: a page that
    # sends the user on to the client's post_logout_redirect_uri may not restrict it.
    leads_on = pending.post_logout_redirect_uri is not None
    return await render(request, "logout.html", context, leads_to_client=leads_on)


async def _confirmed(request: web.Request) -> web.StreamResponse:
    try:
        form = await read_form(request)
    except UnreadableRequest as exc:
        raise LogoutError("The form could not be read.") from exc
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    pending = await request.app[PENDING_LOGOUTS].take(fields.get("logout_id", ""))
    stale = LogoutError(
        "This sign-out form is out of date or was not sent by this site. You are still signed in.",
        status=403,
    )
    if pending is None or pending.tenant_id != request[TENANT].id:
        raise stale
    if not pending.csrf_ok(fields.get("csrf_token")):
        raise stale
    session = await request.app[SESSIONS].current(
        request, request[TENANT].id, await session_lifetimes(request)
    )
    if session is not None and session.sid != pending.sid:
        raise stale  # planted from another browser, or signed in anew since
    if fields.get("action") != "logout":
        return await render(request, "still_signed_in.html", {})
    return await _finish(request, pending.post_logout_redirect_uri, pending.state)


async def end_session(request: web.Request) -> web.StreamResponse:
    try:
        if request.method == "POST" and "logout_id" in (await _form_names(request)):
            return await _confirmed(request)
        return await _logout_request(request, legacy=False)
    except UnreadableRequest as exc:
        return await error_page(request, _TITLE, str(exc))
    except LogoutError as exc:
        return await error_page(request, _TITLE, exc.detail, exc.status)


async def legacy_logout(request: web.Request) -> web.StreamResponse:
    try:
        return await _logout_request(request, legacy=True)
    except UnreadableRequest as exc:
        return await error_page(request, _TITLE, str(exc))
    except LogoutError as exc:
        return await error_page(request, _TITLE, exc.detail, exc.status)


async def _form_names(request: web.Request) -> set[str]:
    if request.content_type != "application/x-www-form-urlencoded":
        return set()
    return set((await read_form(request)).keys())


def logout_routes() -> list[web.RouteDef]:
    return [
        web.get("/oidc/logout", end_session),
        web.post("/oidc/logout", end_session),
        web.get("/v2/logout", legacy_logout),
    ]
