"""Delivering an authorization response or error to the client's redirect URI.

`query` and `fragment` (OAuth 2.0 Multiple Response Types §2.1) are redirects;
`form_post` (OAuth 2.0 Form Post Response Mode §2) is a page whose form posts the parameters
to the redirect URI. Every response carries `iss` (RFC 9207 §2) and the request's `state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

from oidc_common.errors import NO_STORE, OAuthError
from oidc_common.tenancy import ORIGIN

from ..interaction.pages import render
from .request import ErrorTarget


async def authorization_response(
    request: web.Request,
    redirect_uri: str,
    response_mode: str,
    params: Mapping[str, str | int],
    state: str | None,
) -> web.Response:
    """Send `params` (plus `state` and `iss`) to `redirect_uri` by `response_mode`."""
    values = {name: str(value) for name, value in params.items()}
    if state is not None:
        values["state"] = state
    values["iss"] = request[ORIGIN].issuer
    if response_mode == "form_post":
        return await render(
            request,
            "form_post.html",
            {"redirect_uri": redirect_uri, "params": list(values.items())},
            leads_to_client=True,
            with_script=True,
        )
    encoded = urlencode(values)
    if response_mode == "query":
        # RFC 6749 §3.1.2: keep the registered URI's own query, add ours to it.
        location = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{encoded}"
    else:
        location = f"{redirect_uri}#{encoded}"
    # After a POST (a login or consent form) 303, so the browser does not re-send the form's
    # credentials to the client (RFC 9700 §4.12).
    status = 303 if request.method == "POST" else 302
    return web.Response(status=status, headers={"Location": location, **NO_STORE})


async def error_response(
    request: web.Request, target: ErrorTarget, error: OAuthError
) -> web.Response:
    """An error returned to the client (RFC 6749 §4.1.2.1 / §4.2.2.1)."""
    return await authorization_response(
        request,
        target.redirect_uri,
        target.response_mode,
        {"error": error.error, "error_description": error.description},
        target.state,
    )
