"""Which API an access token is for: Auth0's `audience` or an RFC 8707 `resource`.

Both name an API of the tenant by its identifier and mean the same; given together they
must agree (else `invalid_request`). A `resource` is an absolute URI without fragment; one
that names no registered API may still be a resource when it lies under one of the tenant's
allowed URL prefixes (`RegistrationPolicy.resource_url_prefixes`: a new MCP server works
without a Management API call), unless it lies on the tenant's own origin, where its system
APIs live (`on_tenant_origin`), whatever the stored prefixes say. Errors follow the parameter
used: `invalid_target` for `resource` (RFC 8707 §2), Auth0's `access_denied` "Service not
found" for `audience`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.errors import OAuthError
from oidc_common.mongo import Document
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.resource_indicators import (
    on_tenant_origin,
    parse_resource,
    single_resource,
    under_prefix,
)

from .resource_servers import ResourceServer, find_resource_server
from .resource_servers.repository import SIGNING_ALG

# Printable ASCII without `"` and `\` (RFC 6749 §5.2 error_description charset).
_ECHOABLE = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]{1,200}$")


def shown(value: str) -> str:
    return value if _ECHOABLE.match(value) else "(unprintable value)"


def prefix_resource(resource: str) -> ResourceServer:
    """An allowed-prefix URL as the API it stands for: no registered scopes or lifetime."""
    return ResourceServer(
        id="",
        identifier=resource,
        name=resource,
        scopes={},
        signing_alg=SIGNING_ALG,
        allow_offline_access=True,
        token_lifetime=None,
        by_prefix=True,
    )


async def requested_api(
    db: AsyncDatabase[Document],
    tenant_id: str,
    policy: RegistrationPolicy,
    issuer: str,
    audience: str | None,
    resources: Iterable[str],
) -> ResourceServer | None:
    """The API a request names through `audience` or `resource` (None: neither given).

    Raises OAuthError: `invalid_target` for a malformed, unknown or second `resource`,
    `invalid_request` when `audience` and `resource` differ, `access_denied` for an unknown
    `audience`. The Management API is never a target here.
    """
    resource = single_resource(resources)
    if resource is not None:
        parsed = parse_resource(resource)
        if audience is not None and audience != resource:
            raise OAuthError("invalid_request", "audience and resource name different APIs")
        api = await find_resource_server(db, tenant_id, resource)
        if api is not None and not api.is_system:
            return api
        if on_tenant_origin(parsed, issuer):
            raise OAuthError("invalid_target", own_origin_message(resource))
        if any(under_prefix(parsed, prefix) for prefix in policy.resource_url_prefixes):
            return prefix_resource(resource)
        raise OAuthError("invalid_target", f"Unknown resource: {shown(resource)}")
    if audience is None:
        return None
    api = await find_resource_server(db, tenant_id, audience)
    if api is None or api.is_system:
        raise OAuthError("access_denied", f"Service not found: {shown(audience)}")
    return api


def own_origin_message(resource: str) -> str:
    return f"{shown(resource)} is on this server's own origin, which is not a resource"


def check_unregistered_target(audience: str, issuer: str) -> None:
    """Before a user's token is minted for `audience`, an API no longer registered (so it
    stands as a prefix resource): refused on the tenant's own origin, whatever a code or
    refresh token issued earlier carries (`invalid_target`)."""
    if on_tenant_origin(parse_resource(audience), issuer):
        raise OAuthError("invalid_target", own_origin_message(audience))


def check_same_target(requested: str | None, granted: str | None) -> None:
    """A token request's `resource` must be the one granted: with a single resource per grant,
    narrowing can only keep it (RFC 8707 §2.2); anything else would widen the grant."""
    if requested is None:
        return
    parse_resource(requested)
    if requested != granted:
        raise OAuthError("invalid_target", "The resource is not the one the grant was issued for")
