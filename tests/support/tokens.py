"""Minting Management API access tokens in tests, with the tenant's real signing key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from oidc_common.config import Settings
from oidc_common.management_api import MANAGEMENT_API, MANAGEMENT_SCOPES
from oidc_common.mongo import Collections, open_client
from oidc_common.signing_keys import open_private_key


async def tenant_signing_key(settings: Settings, tenant_id: str) -> tuple[str, Any]:
    client = open_client(settings.mongodb_url)
    try:
        doc = await client[settings.mongodb_database][Collections.SIGNING_KEYS].find_one(
            {"tenant_id": tenant_id, "status": "current"}
        )
    finally:
        await client.close()
    assert doc is not None
    key = open_private_key(doc["kid"], doc["sealed_private_key"], settings.require_kek())
    return key.kid, key.private_key


async def management_client_id(settings: Settings, tenant_id: str) -> str:
    """The tenant's bootstrap Management API client (created with the tenant, with a client
    grant): the only kind of caller the Management API accepts."""
    client = open_client(settings.mongodb_url)
    try:
        grant = await client[settings.mongodb_database][Collections.CLIENT_GRANTS].find_one(
            {"tenant_id": tenant_id, "audience": MANAGEMENT_API}, sort=[("created_at", 1)]
        )
    finally:
        await client.close()
    assert grant is not None, "the tenant has no Management API client grant"
    return str(grant["client_id"])


def machine_claims(client_id: str) -> dict[str, str]:
    """The claims `client_credentials` gives a token of `client_id` acting for itself."""
    return {"sub": f"{client_id}@clients", "azp": client_id, "client_id": client_id}


def management_claims(
    issuer: str, scopes: tuple[str, ...] = MANAGEMENT_SCOPES, **overrides: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": "test-client@clients",
        "aud": f"{issuer}api/v2/",
        "azp": "test-client",
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "gty": "client-credentials",
    }
    claims.update(overrides)
    return claims


async def management_token(
    settings: Settings,
    tenant_id: str,
    issuer: str,
    scopes: tuple[str, ...] = MANAGEMENT_SCOPES,
    **overrides: Any,
) -> str:
    """A Management API token as `client_credentials` would mint it for the tenant's bootstrap
    Management API client; `overrides` replace any claim."""
    kid, private_key = await tenant_signing_key(settings, tenant_id)
    caller = machine_claims(await management_client_id(settings, tenant_id))
    return jwt.encode(
        management_claims(issuer, scopes, **{**caller, **overrides}),
        private_key,
        algorithm="RS256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
