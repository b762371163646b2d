"""What the authorize service keeps on its application, under typed keys.

Built after the shared resources (MongoDB, Redis) in the application's cleanup context, so
handlers reach them as `request.app[KEYSTORE]` and `request.app[TENANT_SETTINGS]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from oidc_common.service import DB, REDIS, SETTINGS
from oidc_common.settings_cache import SettingsCache

from .keystore import KeyStore
from .users.passwords import Passwords
from .users.repository import Users

KEYSTORE = web.AppKey("keystore", KeyStore)
TENANT_SETTINGS = web.AppKey("tenant_settings", SettingsCache)

# Users: the Argon2id hasher (cost from configuration) and the tenant-scoped user store.
PASSWORDS = web.AppKey("passwords", Passwords)
USERS = web.AppKey("users", Users)


async def authorize_resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[KEYSTORE] = KeyStore(app[DB], settings)
    app[TENANT_SETTINGS] = SettingsCache(app[REDIS], app[DB], settings.redis_prefix)
    app[PASSWORDS] = Passwords.from_settings(settings)
    app[USERS] = Users(app[DB])
    yield
