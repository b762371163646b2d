"""Which API (resource server) an `audience` names, and what a client was granted on it.

The Management API is addressed by the tenant's own audience (issuer + `api/v2/`) and stored
under the fixed identifier `MANAGEMENT_API`; every other API is stored under the identifier
that is its audience. A client gets a token for an API only through a `client_grants`
document, as in Auth0.
"""

from __future__ import annotations

import re

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.errors import OAuthError
from oidc_common.management_api import MANAGEMENT_API
from oidc_common.mongo import Collections, Document

# Printable ASCII without `"` and `\` (RFC 6749 §5.2 error_description charset).
_ECHOABLE = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]{1,200}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(audience: str) -> str:
    return audience if _ECHOABLE.match(audience) else "(unprintable audience)"


def resource_server_identifier(audience: str, management_audience: str) -> str | None:
    """The stored identifier of the API `audience` names, or None if it cannot name one."""
    if audience == management_audience:
        return MANAGEMENT_API
    if audience == MANAGEMENT_API or _CONTROL.search(audience):
        # The internal key is not an audience: the Management API is only reachable by the
        # tenant's own URL, which is what its tokens are verified against.
        return None
    return audience


async def granted_scopes(
    db: AsyncDatabase[Document],
    tenant_id: str,
    client_id: str,
    audience: str,
    management_audience: str,
) -> list[str]:
    """The scopes `client_id` was granted on the API `audience`; `access_denied` (403) when the
    API is unknown to the tenant or the client has no grant on it."""
    identifier = resource_server_identifier(audience, management_audience)
    api = (
        await db[Collections.RESOURCE_SERVERS].find_one(
            {"tenant_id": tenant_id, "identifier": identifier}, {"_id": 1}
        )
        if identifier is not None
        else None
    )
    if identifier is None or api is None:
        raise OAuthError("access_denied", f"Service not found: {_shown(audience)}", status=403)
    grant = await db[Collections.CLIENT_GRANTS].find_one(
        {"tenant_id": tenant_id, "client_id": client_id, "audience": identifier}
    )
    if grant is None:
        raise OAuthError(
            "access_denied",
            f"Client is not authorized to access {_shown(audience)}: it has no client grant",
            status=403,
        )
    return [str(scope) for scope in grant.get("scope") or ()]
