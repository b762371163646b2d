"""MongoDB access through PyMongo's asyncio API, and the index definitions.

Only CRUD, unique/compound indexes and simple aggregations are used: the embedded test
database (FerretDB) has no transactions, TTL indexes, change streams or `$lookup`.
Every uniqueness rule of the model is backed by a unique index declared here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

Document = dict[str, Any]


class Collections:
    """Collection names, grouped by the service that owns them (README, Architecture)."""

    # tenant-settings
    TENANTS = "tenants"
    TENANT_SETTINGS = "tenant_settings"
    # registration
    CLIENTS = "clients"
    IDEMPOTENCY = "registration_idempotency"
    # authorize
    SIGNING_KEYS = "signing_keys"
    RESOURCE_SERVERS = "resource_servers"
    CLIENT_GRANTS = "client_grants"
    USERS = "users"
    CONSENTS = "consents"
    REFRESH_TOKENS = "refresh_tokens"


INDEXES: Mapping[str, list[IndexModel]] = {
    Collections.TENANTS: [IndexModel([("domain", ASCENDING)], unique=True, name="domain_unique")],
    Collections.TENANT_SETTINGS: [
        IndexModel([("pending_publish", ASCENDING)], name="pending_publish")
    ],
    Collections.CLIENTS: [
        IndexModel([("tenant_id", ASCENDING), ("is_first_party", ASCENDING)], name="tenant_party"),
        IndexModel(
            [("tenant_id", ASCENDING), ("dynamic", ASCENDING), ("last_used_at", ASCENDING)],
            name="tenant_dynamic_last_used",
        ),
    ],
    Collections.IDEMPOTENCY: [
        IndexModel(
            [("tenant_id", ASCENDING), ("key", ASCENDING)], unique=True, name="tenant_key_unique"
        ),
    ],
    Collections.SIGNING_KEYS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("kid", ASCENDING)], unique=True, name="tenant_kid_unique"
        ),
    ],
    Collections.RESOURCE_SERVERS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("identifier", ASCENDING)],
            unique=True,
            name="tenant_identifier_unique",
        ),
    ],
    Collections.CLIENT_GRANTS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("client_id", ASCENDING), ("audience", ASCENDING)],
            unique=True,
            name="tenant_client_audience_unique",
        ),
    ],
    Collections.USERS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("email", ASCENDING)],
            unique=True,
            name="tenant_email_unique",
        ),
        # The Management API lists a tenant's users oldest first.
        IndexModel([("tenant_id", ASCENDING), ("created_at", ASCENDING)], name="tenant_created"),
    ],
    Collections.CONSENTS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("client_id", ASCENDING)],
            unique=True,
            name="tenant_user_client_unique",
        ),
    ],
    Collections.REFRESH_TOKENS: [
        IndexModel([("family_id", ASCENDING)], name="family"),
    ],
}


def open_client(url: str, timeout_ms: int = 3000) -> AsyncMongoClient[Document]:
    # Short server-selection timeout: a request must fail fast (and closed) when the
    # database is down rather than hang for PyMongo's default 30 s.
    return AsyncMongoClient(
        url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True
    )


async def ensure_indexes(db: AsyncDatabase[Document], collections: Iterable[str]) -> None:
    """Create the declared indexes of `collections`; idempotent (same name, same spec)."""
    for name in collections:
        # One index per command: FerretDB 1.x panics on a multi-index createIndexes whose
        # indexes already exist, and one at a time is just as idempotent on MongoDB.
        for model in INDEXES.get(name, ()):
            await db[name].create_indexes([model])


async def ping(db: AsyncDatabase[Document]) -> None:
    await db.command("ping")
