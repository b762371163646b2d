"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0): the page shown when a
session ends frames each client's `frontchannel_logout_uri` that the session signed in to,
with `iss` and `sid` added to its query (§2, §3), so each client clears its own session in
the user's browser. The page's Content-Security-Policy allows frames from exactly those
origins (`frame-src`), and nothing else.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from oidc_common.service import DB

from ..interaction.sessions import LoginSession
from ..registered_clients import find_live_client


def _with_session(uri: str, issuer: str, sid: str) -> str:
    parts = urlsplit(uri)
    added = urlencode({"iss": issuer, "sid": sid})
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


def frame_origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


async def frontchannel_frames(
    request: web.Request, session: LoginSession, issuer: str
) -> list[str]:
    """The URLs to frame for the ended `session`, one per client that registered one."""
    frames = []
    for client_id in session.clients:
        client = await find_live_client(request.app[DB], session.tenant_id, client_id)
        uri = client.metadata.get("frontchannel_logout_uri") if client is not None else None
        if isinstance(uri, str):
            frames.append(_with_session(uri, issuer, session.sid))
    return frames
