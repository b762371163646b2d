"""Tenant bootstrap: everything a new tenant needs to be managed through the Management API.

Creates the tenant (the unique domain index makes a second run fail cleanly), its settings
with registration off, an RSA signing key sealed under the key-encryption key, the
Management API resource server, and a first-party machine-to-machine client granted the
Management API scopes. The client secret is returned once and stored only as a hash, so a
lost one is replaced, not recovered (`rotate_management_secret`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oidc_common.admin_cli import CommandRefused, UnknownTenantError
from oidc_common.credentials import hash_secret, new_client_id, new_secret
from oidc_common.management_api import MANAGEMENT_API, MANAGEMENT_SCOPES
from oidc_common.mongo import Collections, Document, ensure_indexes
from oidc_common.signing_keys import (
    SIGNING_ALG,
    SigningKey,
    generate_signing_key,
    sealed_private_key,
)

from .defaults import default_settings


class TenantExistsError(CommandRefused):
    """A tenant with this domain already exists."""


@dataclass(frozen=True)
class BootstrapResult:
    tenant_id: str
    domain: str
    client_id: str
    client_secret: str
    kid: str


BOOTSTRAP_COLLECTIONS = (
    Collections.TENANTS,
    Collections.TENANT_SETTINGS,
    Collections.SIGNING_KEYS,
    Collections.RESOURCE_SERVERS,
    Collections.CLIENTS,
    Collections.CLIENT_GRANTS,
)


async def create_tenant(
    db: AsyncDatabase[Document], domain: str, kek: bytes, friendly_name: str | None = None
) -> BootstrapResult:
    """Create the tenant of `domain` and everything it needs (module docstring); the client
    secret is in the result, once. Raises TenantExistsError for a domain that has one."""
    domain = domain.strip().lower()
    await ensure_indexes(db, BOOTSTRAP_COLLECTIONS)
    now = dt.datetime.now(dt.UTC)
    tenant_id = "ten_" + secrets.token_hex(8)
    name = friendly_name or domain
    try:
        # The tenant goes first: its unique domain index is the guard against a second run.
        await db[Collections.TENANTS].insert_one(
            {"_id": tenant_id, "domain": domain, "friendly_name": name, "created_at": now}
        )
    except DuplicateKeyError as exc:
        raise TenantExistsError(f"a tenant for domain {domain!r} already exists") from exc

    key = generate_signing_key()
    client_id = new_client_id()
    client_secret = new_secret()
    try:
        for collection, document in _tenant_documents(
            tenant_id, name, now, sealed=(key, kek), client=(client_id, client_secret)
        ):
            await db[collection].insert_one(document)
    except BaseException:
        # No transactions available: undo by hand so no half-created tenant remains.
        for collection in BOOTSTRAP_COLLECTIONS:
            await db[collection].delete_many({"tenant_id": tenant_id})
        await db[Collections.TENANT_SETTINGS].delete_one({"_id": tenant_id})
        await db[Collections.TENANTS].delete_one({"_id": tenant_id})
        raise
    return BootstrapResult(tenant_id, domain, client_id, client_secret, key.kid)


def _tenant_documents(
    tenant_id: str,
    name: str,
    now: dt.datetime,
    *,
    sealed: tuple[SigningKey, bytes],
    client: tuple[str, str],
) -> list[tuple[str, Document]]:
    """What a new tenant stores besides itself, in insertion order: its settings, its signing
    key (sealed under the key-encryption key), then its Management API documents."""
    key, kek = sealed
    return [
        (
            Collections.TENANT_SETTINGS,
            {
                "_id": tenant_id,
                "version": 1,
                "published_version": 0,
                "settings": default_settings(name),
                "updated_at": now,
            },
        ),
        (
            Collections.SIGNING_KEYS,
            {
                "tenant_id": tenant_id,
                "kid": key.kid,
                "alg": SIGNING_ALG,
                "status": "current",
                "public_jwk": key.public_jwk,
                "sealed_private_key": sealed_private_key(key, kek),
                "created_at": now,
            },
        ),
        *_management_api_documents(tenant_id, name, now, client),
    ]


def _management_api_documents(
    tenant_id: str, name: str, now: dt.datetime, client: tuple[str, str]
) -> list[tuple[str, Document]]:
    """The Management API resource server, its first-party client (`client` = id and secret,
    stored hashed) and that client's grant of every Management API scope."""
    client_id, client_secret = client
    return [
        (
            Collections.RESOURCE_SERVERS,
            {
                "tenant_id": tenant_id,
                "identifier": MANAGEMENT_API,
                "name": "Management API",
                "is_system": True,
                "scopes": list(MANAGEMENT_SCOPES),
                "created_at": now,
            },
        ),
        (
            Collections.CLIENTS,
            {
                "_id": client_id,
                "tenant_id": tenant_id,
                "client_name": f"{name} (Management API client)",
                "app_type": "non_interactive",
                "is_first_party": True,
                "dynamic": False,
                "token_endpoint_auth_method": "client_secret_post",
                "client_secret_hash": hash_secret(client_secret),
                "grant_types": ["client_credentials"],
                "redirect_uris": [],
                "created_at": now,
            },
        ),
        (
            Collections.CLIENT_GRANTS,
            {
                "tenant_id": tenant_id,
                "client_id": client_id,
                "audience": MANAGEMENT_API,
                "scope": list(MANAGEMENT_SCOPES),
                "created_at": now,
            },
        ),
    ]


async def rotate_management_secret(db: AsyncDatabase[Document], domain: str) -> BootstrapResult:
    """A new secret for the tenant's bootstrap Management API client; the old one stops
    working at once. For an operator who lost the secret printed at creation."""
    domain = domain.strip().lower()
    tenant = await db[Collections.TENANTS].find_one({"domain": domain})
    if tenant is None:
        raise UnknownTenantError(f"no tenant has the domain {domain!r}")
    client = await db[Collections.CLIENTS].find_one(
        {
            "tenant_id": tenant["_id"],
            "is_first_party": True,
            "dynamic": False,
            "grant_types": "client_credentials",
        },
        sort=[("created_at", 1)],
    )
    if client is None:
        raise CommandRefused(f"tenant {domain!r} has no Management API client")
    client_secret = new_secret()
    await db[Collections.CLIENTS].update_one(
        {"_id": client["_id"]},
        {"$set": {"client_secret_hash": hash_secret(client_secret), "updated_at": _now()}},
    )
    key = await db[Collections.SIGNING_KEYS].find_one(
        {"tenant_id": tenant["_id"], "status": "current"}
    )
    return BootstrapResult(
        tenant["_id"], domain, client["_id"], client_secret, key["kid"] if key else ""
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
