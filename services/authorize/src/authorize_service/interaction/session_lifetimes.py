"""A tenant's login-session lifetimes, from its settings (Auth0's `session_lifetime` and
`idle_session_lifetime`, in hours); the defaults when they are unset or unreadable (a
lifetime is never a reason to fail a sign-in)."""

from __future__ import annotations

import logging

from aiohttp import web

from oidc_common.settings_cache import SettingsUnavailable
from oidc_common.tenancy import TENANT

from ..resources import TENANT_SETTINGS
from .sessions import (
    DEFAULT_IDLE_SESSION_LIFETIME_HOURS,
    DEFAULT_SESSION_LIFETIME_HOURS,
    SessionLifetimes,
)

log = logging.getLogger(__name__)


def _hours(value: object, default: int) -> int:
    hours = value if isinstance(value, int) and not isinstance(value, bool) else default
    return hours * 3600


_LIFETIMES = web.RequestKey("session_lifetimes", SessionLifetimes)


async def session_lifetimes(request: web.Request) -> SessionLifetimes:
    """The request's tenant's lifetimes, read once per request."""
    if _LIFETIMES in request:
        return request[_LIFETIMES]
    try:
        snapshot = await request.app[TENANT_SETTINGS].read(request[TENANT].id)
    except SettingsUnavailable as exc:
        log.warning(
            "tenant settings unavailable; default session lifetimes", extra={"error": str(exc)}
        )
        snapshot = None
    settings = snapshot.settings if snapshot is not None else {}
    lifetimes = SessionLifetimes(
        absolute=_hours(settings.get("session_lifetime"), DEFAULT_SESSION_LIFETIME_HOURS),
        idle=_hours(settings.get("idle_session_lifetime"), DEFAULT_IDLE_SESSION_LIFETIME_HOURS),
    )
    request[_LIFETIMES] = lifetimes
    return lifetimes
