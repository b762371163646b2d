"""Minting Management API access tokens in tests, with the tenant's real signing key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from oidc_common.config import Settings
from oidc_common.management_api import MANAGEMENT_SCOPES
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
    kid, private_key = await tenant_signing_key(settings, tenant_id)
    return jwt.encode(
        management_claims(issuer, scopes, **overrides),
        private_key,
        algorithm="RS256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
