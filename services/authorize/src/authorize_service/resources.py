"""What the authorize service keeps on its application, under typed keys.

Built after the shared resources (MongoDB, Redis) in the application's cleanup context, so
handlers reach them as `request.app[KEYSTORE]` and `request.app[TENANT_SETTINGS]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from oidc_common.service import DB, REDIS, SETTINGS
from oidc_common.settings_cache import SettingsCache

from .client_id_metadata.registry import ClientIdMetadata
from .connected_apps.sign_in import SignInForms
from .grants.repository import Grants
from .interaction.sessions import Sessions
from .interaction.store import Interactions
from .interaction.throttle import LoginThrottle
from .keystore import KeyStore
from .logout.pending import PendingLogouts
from .resource_servers.repository import MAX_TOKEN_LIFETIME
from .tokens.authorization_codes import AuthorizationCodes
from .tokens.client_assertions import UsedAssertions
from .tokens.client_jwks import ClientJwks
from .tokens.refresh_tokens import REFRESH_TOKEN_TTL, RefreshTokens
from .tokens.revocations import Revocations
from .users.passwords import Passwords
from .users.repository import Users

KEYSTORE = web.AppKey("keystore", KeyStore)
TENANT_SETTINGS = web.AppKey("tenant_settings", SettingsCache)
# Sign-in: pending interactions, login sessions, throttling, codes and refresh tokens.
INTERACTIONS = web.AppKey("interactions", Interactions)
SESSIONS = web.AppKey("sessions", Sessions)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
PENDING_LOGOUTS = web.AppKey("pending_logouts", PendingLogouts)
APPS_SIGN_IN = web.AppKey("apps_sign_in", SignInForms)
# private_key_jwt: the jti of every accepted client assertion, until it expires.
USED_ASSERTIONS = web.AppKey("used_assertions", UsedAssertions)
CLIENT_JWKS = web.AppKey("client_jwks", ClientJwks)
CODES = web.AppKey("authorization_codes", AuthorizationCodes)
REFRESH_TOKENS = web.AppKey("refresh_tokens", RefreshTokens)
REVOCATIONS = web.AppKey("revocations", Revocations)

# Grants: what users allowed third-party clients (consent, revocation).
GRANTS = web.AppKey("grants", Grants)

# Users: the Argon2id hasher (cost from configuration) and the tenant-scoped user store.
PASSWORDS = web.AppKey("passwords", Passwords)
USERS = web.AppKey("users", Users)

# Client ID Metadata Documents: the guarded fetcher and the cache of fetched documents.
CLIENT_ID_METADATA = web.AppKey("client_id_metadata", ClientIdMetadata)


async def authorize_resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[KEYSTORE] = KeyStore(app[DB], settings)
    app[TENANT_SETTINGS] = SettingsCache(app[REDIS], app[DB], settings.redis_prefix)
    redis, prefix = app[REDIS], settings.redis_prefix
    app[INTERACTIONS] = Interactions(redis, prefix)
    app[SESSIONS] = Sessions(redis, prefix)
    app[LOGIN_THROTTLE] = LoginThrottle(redis, prefix)
    app[PENDING_LOGOUTS] = PendingLogouts(redis, prefix)
    app[APPS_SIGN_IN] = SignInForms(redis, prefix)
    app[USED_ASSERTIONS] = UsedAssertions(redis, prefix)
    app[CLIENT_JWKS] = ClientJwks.from_settings(settings)
    app[CODES] = AuthorizationCodes(redis, prefix)
    app[REFRESH_TOKENS] = RefreshTokens(app[DB], redis, prefix)
    # As long as the longest token a revoked grant's marker guards can live: an access token
    # (the service's TTL or an API's longest lifetime) or a refresh token of its family.
    revocation_ttl = max(
        settings.access_token_ttl, MAX_TOKEN_LIFETIME, int(REFRESH_TOKEN_TTL.total_seconds())
    )
    app[REVOCATIONS] = Revocations(redis, prefix, revocation_ttl)
    app[PASSWORDS] = Passwords.from_settings(settings)
    app[USERS] = Users(app[DB])
    app[GRANTS] = Grants(app[DB])
    app[CLIENT_ID_METADATA] = ClientIdMetadata.from_settings(settings, redis)
    yield
