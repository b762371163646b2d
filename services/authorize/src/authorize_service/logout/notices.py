"""Telling the clients a session signed in to that it ended (OpenID Connect Back-Channel
Logout 1.0): durable deliveries recorded before the browser is answered, `session.ended`
published, the local deliverer woken (`deliveries`)."""

from __future__ import annotations

import logging

from aiohttp import web

from oidc_common.tenancy import ORIGIN

from ..interaction.sessions import LoginSession
from .deliveries import LOGOUT_DELIVERIES, announce

log = logging.getLogger(__name__)


async def session_ended(request: web.Request, session: LoginSession) -> None:
    """The session `session` ended in this request."""
    deliveries = request.app[LOGOUT_DELIVERIES]
    recorded = await deliveries.record(session, request[ORIGIN].issuer)
    log.info("session ended", extra={"clients": len(session.clients), "deliveries": recorded})
    # Every ending is announced (DESIGN.md: `session.ended`), whoever else may listen.
    await announce(request.app, session)
    if recorded:
        deliveries.wake()
