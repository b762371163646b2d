"""The interaction pages: `/u/login` and `/u/consent` (GET shows, POST acts).

Each POST is checked in this order: the interaction is live and of this tenant, it is bound
to this browser (cookie), the form's CSRF token is the interaction's (constant-time), and
the client is still live. Failed logins are throttled per (account, address) and per address,
slowed past an account-wide ceiling (`throttle`), and an unknown
email gets the same answer as a wrong password.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..authorization.flow import advance, complete
from ..authorization.parameters import UnreadableRequest, read_form
from ..authorization.request import (
    AuthorizationRequest,
    ErrorTarget,
    PageError,
    check_redirect_uri,
    response_type_words,
)
from ..authorization.response_modes import error_response
from ..client_id_metadata.errors import MetadataDocumentError
from ..client_id_metadata.resolver import metadata_document_client
from ..connected_apps.handlers import connected_apps_routes
from ..grants.repository import ConsentKey
from ..oidc_scopes import DESCRIPTIONS
from ..registered_clients import RegisteredClient, find_live_client
from ..resource_servers import find_resource_server
from ..resources import GRANTS, INTERACTIONS, LOGIN_THROTTLE, PASSWORDS, SESSIONS, USERS
from ..users.login import authenticate_user
from .cookies import our_cookie
from .pages import STATIC_PREFIX, error_page, render
from .session_lifetimes import session_lifetimes
from .sessions import LoginSession
from .store import Interaction, binding_cookie

log = logging.getLogger(__name__)

EXPIRED = PageError(
    "Sign-in expired",
    "This sign-in has expired or was started in another browser. Go back to the application "
    "and start again.",
)
WRONG_CREDENTIALS = "Wrong email or password."
STATIC = Path(__file__).parent / "static"
MAX_FIELD = 1024


async def _interaction(request: web.Request, interaction_id: str | None) -> Interaction:
    interaction = await request.app[INTERACTIONS].load(interaction_id, request[TENANT].id)
    if interaction is None or not interaction.bound_to(
        our_cookie(request, binding_cookie(interaction.id))
    ):
        raise EXPIRED
    return interaction


async def _posted(request: web.Request) -> tuple[Interaction, dict[str, str]]:
    """The interaction of a page's POST, its CSRF token checked, and the form's fields."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise PageError("Invalid request", "The form could not be read.")
    try:
        form = await read_form(request)
    except UnreadableRequest as exc:
        raise PageError("Invalid request", "The form could not be read.") from exc
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    interaction = await _interaction(request, fields.get("state"))
    if not interaction.csrf_ok(fields.get("csrf_token")):
        raise PageError(
            "Invalid request",
            "This form is out of date or was not sent by this site. Go "
            "back to the application and start again.",
            status=403,
        )
    return interaction, fields


async def _client(request: web.Request, areq: AuthorizationRequest) -> RegisteredClient:
    """The interaction's client, still live and still registered for what was asked (its
    registration may have changed while the user was signing in)."""
    client = await find_live_client(request.app[DB], request[TENANT].id, areq.client_id)
    if client is None:  # a metadata-document client: its cached document, else a fetch
        try:
            client = await metadata_document_client(request, areq.client_id)
        except MetadataDocumentError as exc:
            raise PageError(exc.title, exc.detail) from None
    if client is None:
        raise PageError("Unknown application", "This application was removed meanwhile.")
    check_redirect_uri(client, areq.redirect_uri)
    if areq.words not in {response_type_words(item) for item in client.response_types}:
        raise PageError("Invalid request", "This application's registration changed meanwhile.")
    return client


def _target(areq: AuthorizationRequest) -> ErrorTarget:
    return ErrorTarget(areq.redirect_uri, areq.response_mode, areq.state)


async def _login_page(
    request: web.Request,
    interaction: Interaction,
    client: RegisteredClient,
    *,
    email: str = "",
    message: str | None = None,
    status: int = 200,
) -> web.Response:
    context = {
        "state": interaction.id,
        "csrf_token": interaction.csrf,
        "client_name": client.name,
        "unverified": client.dynamic,
        "email": email or interaction.request.login_hint or "",
        "message": message,
    }
    return await render(request, "login.html", context, status=status, leads_to_client=True)


async def show_login(request: web.Request) -> web.Response:
    interaction = await _interaction(request, request.query.get("state"))
    return await _login_page(request, interaction, await _client(request, interaction.request))


async def submit_login(request: web.Request) -> web.Response:
    interaction, form = await _posted(request)
    client = await _client(request, interaction.request)
    email, password = form.get("email", "")[:MAX_FIELD], form.get("password", "")[:MAX_FIELD]
    tenant_id, client_ip = request[TENANT].id, request[ORIGIN].client_ip
    throttle = request.app[LOGIN_THROTTLE]
    verdict = await throttle.attempt(tenant_id, email, client_ip)
    if verdict.blocked:
        wait = verdict.retry_after
        minutes = (wait + 59) // 60
        page = await _login_page(
            request,
            interaction,
            client,
            email=email,
            status=429,
            message=f"Too many failed attempts. Try again in {minutes} minute(s).",
        )
        page.headers["Retry-After"] = str(wait)
        return page
    if verdict.delay:  # the account is under a distributed attack: slowed, not locked
        log.warning("login attempts slowed for an account over its failure ceiling")
        await asyncio.sleep(verdict.delay)
    user = None
    if email and password:
        user = await authenticate_user(
            request.app[USERS], request.app[PASSWORDS], tenant_id, email, password
        )
    if user is None:
        return await _login_page(
            request, interaction, client, email=email, message=WRONG_CREDENTIALS, status=401
        )
    await throttle.succeeded(tenant_id, email, client_ip)
    auth_time = int(time.time())
    interaction = await request.app[INTERACTIONS].signed_in(interaction, user.user_id, auth_time)
    # The session exists before the flow goes on, so the answer's ID token can name it.
    lifetimes = await session_lifetimes(request)
    sessions = request.app[SESSIONS]
    await sessions.open(request, LoginSession(tenant_id, user.user_id, auth_time), lifetimes)
    try:
        response = await advance(request, interaction.request, client, interaction)
    except OAuthError as exc:
        response = await error_response(request, _target(interaction.request), exc)
    sessions.attach(request, response, lifetimes)
    return response


async def _scope_lines(
    request: web.Request, areq: AuthorizationRequest
) -> tuple[list[dict[str, str]], str | None]:
    api = (
        await find_resource_server(request.app[DB], request[TENANT].id, areq.audience)
        if areq.audience is not None
        else None
    )
    described = dict(DESCRIPTIONS) | (api.scopes if api is not None else {})
    lines = [{"value": scope, "description": described.get(scope, "")} for scope in areq.scopes]
    # An allowed-prefix resource (RFC 8707) has no registered name: its URL is what it is.
    return lines, (api.name or api.identifier) if api is not None else areq.audience


async def _signed_in_as(request: web.Request, interaction: Interaction) -> str:
    """The interaction's user, whose live session this browser must still hold: after a
    logout (or once the session ended) a consent page left open grants nothing."""
    session = await request.app[SESSIONS].current(
        request, request[TENANT].id, await session_lifetimes(request)
    )
    if interaction.user_id is None or session is None or session.user_id != interaction.user_id:
        raise EXPIRED
    return interaction.user_id


async def show_consent(request: web.Request) -> web.Response:
    interaction = await _interaction(request, request.query.get("state"))
    user_id = await _signed_in_as(request, interaction)
    areq = interaction.request
    client = await _client(request, areq)
    user = await request.app[USERS].get(request[TENANT].id, user_id)
    if user is None:
        raise EXPIRED
    scopes, api_name = await _scope_lines(request, areq)
    redirect = urlsplit(areq.redirect_uri)
    context = {
        "state": interaction.id,
        "csrf_token": interaction.csrf,
        "client_name": client.name,
        "unverified": client.dynamic,
        "logo_uri": client.uri("logo_uri"),
        "policy_uri": client.uri("policy_uri"),
        "tos_uri": client.uri("tos_uri"),
        "user_email": user.email,
        "api_name": api_name,
        "scopes": scopes,
        "redirect_host": redirect.hostname or f"{redirect.scheme}:",
        "software": client.software,
        # Draft -02 §8.5: the host of a metadata document is what the user is trusting.
        "document_host": client.document_host,
    }
    return await render(request, "consent.html", context, leads_to_client=True)


async def submit_consent(request: web.Request) -> web.Response:
    interaction, form = await _posted(request)
    areq = interaction.request
    if interaction.user_id is None or interaction.auth_time is None:
        raise EXPIRED
    await _signed_in_as(request, interaction)
    client = await _client(request, areq)
    if not await request.app[INTERACTIONS].finish(interaction):
        raise EXPIRED  # submitted twice
    if form.get("action") != "allow":
        return await error_response(
            request, _target(areq), OAuthError("access_denied", "The user denied access")
        )
    user = await request.app[USERS].get(request[TENANT].id, interaction.user_id)
    if user is None:
        raise EXPIRED
    key = ConsentKey(client.tenant_id, user.user_id, client.client_id, areq.audience)
    await request.app[GRANTS].remember(key, areq.scopes)
    return await complete(request, areq, client, user, interaction.auth_time)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_errors(handler: Handler) -> Handler:
    """PageError -> the error page, in the pages' own format."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageError as exc:
            return await error_page(request, exc.title, exc.detail, exc.status)

    return wrapped


async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "site.css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def interaction_routes() -> list[web.RouteDef]:
    return [
        web.get("/u/login", page_errors(show_login)),
        web.post("/u/login", page_errors(submit_login)),
        web.get("/u/consent", page_errors(show_consent)),
        web.post("/u/consent", page_errors(submit_consent)),
        web.get(f"{STATIC_PREFIX}site.css", stylesheet),
        *connected_apps_routes(page_errors),
    ]
