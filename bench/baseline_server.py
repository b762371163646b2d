"""The benchmark's baseline: a bare aiohttp handler that only parses the body and returns ids.

It shows what one Python process can do on this machine with no storage at all, so the
registration figures can be read as a fraction of it.
"""

from __future__ import annotations

import secrets
import sys

from aiohttp import web


async def register(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(
        {
            "client_id": secrets.token_urlsafe(24),
            "client_secret": secrets.token_urlsafe(48),
            "client_name": body.get("client_name"),
            "redirect_uris": body.get("redirect_uris"),
            "client_secret_expires_at": 0,
        },
        status=201,
    )


async def token(request: web.Request) -> web.Response:
    """The token bench's baseline: read the form, answer random tokens, store nothing."""
    form = await request.post()
    return web.json_response(
        {
            "access_token": secrets.token_urlsafe(600),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": form.get("scope") or "openid",
        }
    )


def main() -> None:
    app = web.Application()
    app.router.add_post("/oidc/register", register)
    app.router.add_post("/oauth/token", token)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
