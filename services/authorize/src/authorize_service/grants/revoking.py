"""Taking a grant back: the user's access to the client ends, then the grant goes.

In this order, so that a failure half way leaves the grant listed (and the call can be
repeated) rather than a grant gone with its tokens still alive: every access token of the user
for the client stops working where this provider checks (`Revocations.revoke_access`:
`/userinfo`, `/oauth/introspect`; APIs that only verify the JWT stop at its `exp`), the
refresh tokens issued under the grant's API are revoked, and the grant is deleted, so the
client's next sign-in asks for consent again.
"""

from __future__ import annotations

from aiohttp import web

from ..resources import GRANTS, REFRESH_TOKENS, REVOCATIONS
from .repository import Grant


async def take_back(request: web.Request, grant: Grant) -> None:
    app = request.app
    await app[REVOCATIONS].revoke_access(grant.tenant_id, grant.user_id, grant.client_id)
    await app[REFRESH_TOKENS].revoke_consent(
        grant.tenant_id, grant.user_id, grant.client_id, [grant.audience]
    )
    await app[GRANTS].delete(grant)
