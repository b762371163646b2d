"""Server-rendered pages: one Jinja2 environment with autoescaping, one set of headers.

Every page answers with a Content-Security-Policy that allows no inline script (the
form_post page's one script carries a per-response nonce), `frame-ancestors 'none'` and
`X-Frame-Options: DENY` against clickjacking, `Cache-Control: no-store`, and
`Referrer-Policy: no-referrer` (a page URL carries the interaction id).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
from aiohttp import web

from oidc_common.settings_cache import SettingsUnavailable
from oidc_common.tenancy import TENANT
from oidc_common.text import looks_like

from ..resources import TENANT_SETTINGS

log = logging.getLogger(__name__)

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("authorize_service.interaction", "templates"),
    autoescape=True,  # every value is HTML-escaped unless a template says otherwise
    undefined=jinja2.StrictUndefined,
)
# `{% if client_name is looks_like(tenant.name) %}`: a third-party name that imitates the
# tenant's own (UTS #39 skeletons; oidc_common.text) is called out on the page.
_ENVIRONMENT.tests["looks_like"] = looks_like
STATIC_PREFIX = "/u/assets/"


def security_headers(
    *,
    leads_to_client: bool = False,
    script_nonce: str | None = None,
    frame_origins: Sequence[str] = (),
) -> dict[str, str]:
    """The headers of every page.

    `leads_to_client`: the page's form ends in a redirect (or a post) to the client. Such pages
    carry no `form-action`: browsers apply it to every redirect after the submission too, so
    it would block a native app's `[::1]` or `127.0.0.2` callback (CSP cannot name those
    hosts) and any client whose callback redirects on to another origin. Their forms post only
    to this origin, and autoescaping keeps markup out. Other pages allow `'self'` alone.
    `frame_origins`: the only origins the page may frame (front-channel logout), else none.
    """
    script = f"'nonce-{script_nonce}'" if script_nonce else "'none'"
    directives = [
        "default-src 'none'",
        f"script-src {script}",
        "style-src 'self'",
        "img-src 'self' https: data:",
        *([] if leads_to_client else ["form-action 'self'"]),
        *([f"frame-src {' '.join(frame_origins)}"] if frame_origins else []),
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    return {
        "Content-Security-Policy": "; ".join(directives),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
    }


async def branding(request: web.Request) -> dict[str, str | None]:
    """The tenant's `friendly_name` and `picture_url` from its settings (Auth0's fields)."""
    tenant = request[TENANT]
    name, picture = tenant.friendly_name or tenant.domain, None
    try:
        snapshot = await request.app[TENANT_SETTINGS].read(tenant.id)
    except SettingsUnavailable as exc:  # branding is cosmetic: never fail a page for it
        log.warning("tenant settings unavailable for branding", extra={"error": str(exc)})
        snapshot = None
    if snapshot is not None:
        name = str(snapshot.settings.get("friendly_name") or name)
        value = snapshot.settings.get("picture_url")
        picture = value if isinstance(value, str) and value.startswith("https://") else None
    return {"name": name, "picture_url": picture}


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    leads_to_client: bool = False,
    with_script: bool = False,
    frame_origins: Sequence[str] = (),
) -> web.Response:
    """`template` rendered with `context`, the tenant's branding and a script nonce."""
    nonce = secrets.token_urlsafe(16) if with_script else None
    html = _ENVIRONMENT.get_template(template).render(
        **context, tenant=await branding(request), script_nonce=nonce, assets=STATIC_PREFIX
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=security_headers(
            leads_to_client=leads_to_client, script_nonce=nonce, frame_origins=frame_origins
        ),
    )


async def error_page(
    request: web.Request, title: str, detail: str, status: int = 400
) -> web.Response:
    return await render(request, "error.html", {"title": title, "detail": detail}, status=status)
