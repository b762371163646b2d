"""`/u/apps`: the applications that hold access to the signed-in user's account.

`GET /u/apps` lists each application the user granted access (their grants, `grants/`):
its name, the unverified badge of a third-party app, the host that published a Client ID
Metadata Document, the APIs and scopes it holds, when it was first allowed and last used.
`POST /u/apps/revoke` takes one application's access back (`grants.revoking`, for each of
its grants, and every refresh token it holds for the user): the next sign-in there asks
again. The form carries the session's CSRF token (constant-time comparison); without a
session the page offers its own sign-in (`POST /u/apps/login`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from oidc_common.errors import NO_STORE
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..authorization.parameters import UnreadableRequest, read_form
from ..authorization.request import PageError
from ..grants.repository import Grant
from ..grants.revoking import take_back
from ..interaction.cookies import our_cookie
from ..interaction.pages import render
from ..interaction.session_lifetimes import session_lifetimes
from ..interaction.sessions import LoginSession
from ..oidc_scopes import DESCRIPTIONS
from ..registered_clients import find_live_client
from ..resource_servers import find_resource_server
from ..resources import (
    APPS_SIGN_IN,
    GRANTS,
    LOGIN_THROTTLE,
    PASSWORDS,
    REFRESH_TOKENS,
    REVOCATIONS,
    SESSIONS,
    USERS,
)
from ..users.login import authenticate_user
from .sign_in import BINDING_COOKIE, FORM_TTL

MAX_FIELD = 1024
STALE = PageError(
    "Page expired",
    "This page is out of date or was not sent by this site. Open your connected apps again.",
    status=403,
)


def _day(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%d %b %Y") if value is not None else None


async def _current(request: web.Request) -> LoginSession | None:
    return await request.app[SESSIONS].current(
        request, request[TENANT].id, await session_lifetimes(request)
    )


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise PageError("Invalid request", "The form could not be read.")
    try:
        form = await read_form(request)
    except UnreadableRequest as exc:
        raise PageError("Invalid request", "The form could not be read.") from exc
    return {name: value[:MAX_FIELD] for name, value in form.items() if isinstance(value, str)}


async def _app_view(request: web.Request, client_id: str, grants: list[Grant]) -> dict[str, Any]:
    """One application as the page shows it."""
    tenant_id = request[TENANT].id
    client = await find_live_client(request.app[DB], tenant_id, client_id)
    document_host = urlsplit(client_id).hostname if client_id.startswith("https://") else None
    accesses = []
    for grant in grants:
        api_name = None
        if grant.audience is not None:
            api = await find_resource_server(request.app[DB], tenant_id, grant.audience)
            api_name = (api.name or api.identifier) if api is not None else grant.audience
        scopes = [
            {"value": scope, "description": DESCRIPTIONS.get(scope, "")} for scope in grant.scopes
        ]
        accesses.append({"api": api_name, "scopes": scopes})
    used = [grant.last_used_at for grant in grants if grant.last_used_at is not None]
    return {
        "client_id": client_id,
        "name": client.name if client is not None else (document_host or "A removed application"),
        "unverified": client.dynamic if client is not None else document_host is not None,
        "document_host": document_host,
        "accesses": accesses,
        "first_allowed": _day(min(grant.created_at for grant in grants)),
        "last_used": _day(max(used)) if used else None,
    }


async def show_apps(request: web.Request) -> web.Response:
    session = await _current(request)
    if session is None:
        form, binding = await request.app[APPS_SIGN_IN].start(request[TENANT].id)
        blank = {"form_id": form.id, "csrf_token": form.csrf, "email": "", "message": None}
        page = await render(request, "apps_login.html", blank)
        page.set_cookie(
            BINDING_COOKIE,
            binding,
            max_age=FORM_TTL,
            path="/u/apps",
            httponly=True,
            samesite="Lax",
            secure=request[ORIGIN].scheme == "https",
        )
        return page
    user = await request.app[USERS].get(request[TENANT].id, session.user_id)
    if user is None:
        raise PageError("Signed out", "Your account no longer exists.", status=401)
    by_client: dict[str, list[Grant]] = {}
    for grant in await request.app[GRANTS].of_user(request[TENANT].id, user.user_id):
        by_client.setdefault(grant.client_id, []).append(grant)
    apps = [await _app_view(request, client_id, grants) for client_id, grants in by_client.items()]
    context: dict[str, Any] = {
        "user_email": user.email,
        "apps": apps,
        "csrf_token": session.csrf,
        "revoked": request.query.get("revoked") == "1",
    }
    return await render(request, "apps.html", context)


async def revoke_app(request: web.Request) -> web.StreamResponse:
    fields = await _form(request)
    session = await _current(request)
    if session is None or not session.csrf_ok(fields.get("csrf_token")):
        raise STALE
    tenant_id, client_id = request[TENANT].id, fields.get("client_id", "")
    grants = [
        grant
        for grant in await request.app[GRANTS].of_user(tenant_id, session.user_id)
        if grant.client_id == client_id
    ]
    for grant in grants:
        await take_back(request, grant)
    # Whatever is left, listed or not (a code redeemed after its grant went, say): every
    # access token and refresh token the app holds for the user.
    await request.app[REVOCATIONS].revoke_access(tenant_id, session.user_id, client_id)
    await request.app[REFRESH_TOKENS].revoke_consent(tenant_id, session.user_id, client_id)
    return web.Response(status=303, headers={"Location": "/u/apps?revoked=1", **NO_STORE})


async def sign_in(request: web.Request) -> web.StreamResponse:
    fields = await _form(request)
    forms = request.app[APPS_SIGN_IN]
    form = await forms.get(fields.get("form_id", ""))
    if (
        form is None
        or form.tenant_id != request[TENANT].id
        or not form.csrf_ok(fields.get("csrf_token"))
        or not form.bound_to(our_cookie(request, BINDING_COOKIE))
    ):
        raise STALE
    email, password = fields.get("email", ""), fields.get("password", "")
    tenant_id, client_ip = request[TENANT].id, request[ORIGIN].client_ip
    throttle = request.app[LOGIN_THROTTLE]
    verdict = await throttle.attempt(tenant_id, email, client_ip)
    if verdict.delay:  # the account is under a distributed attack: slowed, not locked
        await asyncio.sleep(verdict.delay)
    user = None
    if not verdict.blocked and email and password:
        user = await authenticate_user(
            request.app[USERS], request.app[PASSWORDS], tenant_id, email, password
        )
    if user is None:
        message = (
            "Too many failed attempts. Try again later."
            if verdict.blocked
            else "Wrong email or password."
        )
        context = {"form_id": form.id, "csrf_token": form.csrf, "email": email, "message": message}
        page = await render(
            request, "apps_login.html", context, status=429 if verdict.blocked else 401
        )
        if verdict.blocked:
            page.headers["Retry-After"] = str(verdict.retry_after)
        return page
    await throttle.succeeded(tenant_id, email, client_ip)
    await forms.used(form)
    lifetimes = await session_lifetimes(request)
    sessions = request.app[SESSIONS]
    await sessions.open(request, LoginSession(tenant_id, user.user_id, int(time.time())), lifetimes)
    response = web.Response(status=303, headers={"Location": "/u/apps", **NO_STORE})
    sessions.attach(request, response, lifetimes)
    return response


def connected_apps_routes(page_errors: Any) -> list[web.RouteDef]:
    return [
        web.get("/u/apps", page_errors(show_apps)),
        web.post("/u/apps/revoke", page_errors(revoke_app)),
        web.post("/u/apps/login", page_errors(sign_in)),
    ]
