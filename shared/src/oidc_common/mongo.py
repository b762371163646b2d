"""MongoDB access through PyMongo's asyncio API, and the index definitions.

Only CRUD, unique/compound indexes and simple aggregations are used: the embedded test
database (FerretDB) has no transactions, TTL indexes, change streams or `$lookup`.
Every uniqueness rule of the model is backed by a unique index declared here.

After the database restarts, the connections in PyMongo's pool are dead. PyMongo retries a
read once by itself (`retryReads`, on by default) and clears the pool after any network
error; its monitor, checking every `HEARTBEAT_MS`, clears it too when it finds the server
gone. Writes are not retried without a replica set (retryable writes need sessions), so a
write that meets a dead connection fails: `retry_once` runs an idempotent write a second time
after such a failure. A write that is not idempotent as it stands must be made so first (a
fixed `_id`, a version condition) or not be retried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

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
    GRANTS = "grants"
    REFRESH_TOKENS = "refresh_tokens"
    LOGOUT_DELIVERIES = "logout_deliveries"


def tenant_unique(*fields: str, name: str) -> IndexModel:
    """A unique index on `fields` within a tenant (every uniqueness rule is per tenant)."""
    keys = [("tenant_id", ASCENDING), *((field, ASCENDING) for field in fields)]
    return IndexModel(keys, unique=True, name=name)


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
    Collections.IDEMPOTENCY: [tenant_unique("key", name="tenant_key_unique")],
    Collections.SIGNING_KEYS: [tenant_unique("kid", name="tenant_kid_unique")],
    Collections.RESOURCE_SERVERS: [
        tenant_unique("identifier", name="tenant_identifier_unique"),
    ],
    Collections.CLIENT_GRANTS: [
        tenant_unique("client_id", "audience", name="tenant_client_audience_unique"),
    ],
    Collections.USERS: [
        tenant_unique("email", name="tenant_email_unique"),
        # The Management API lists a tenant's users oldest first.
        IndexModel([("tenant_id", ASCENDING), ("created_at", ASCENDING)], name="tenant_created"),
    ],
    Collections.GRANTS: [
        tenant_unique(
            "user_id", "client_id", "audience", name="tenant_user_client_audience_unique"
        ),
        IndexModel([("tenant_id", ASCENDING), ("created_at", ASCENDING)], name="tenant_created"),
    ],
    Collections.REFRESH_TOKENS: [
        IndexModel([("family_id", ASCENDING)], name="family"),
    ],
    Collections.LOGOUT_DELIVERIES: [
        IndexModel(
            [
                ("delivered_at", ASCENDING),
                ("gave_up_at", ASCENDING),
                ("next_attempt_at", ASCENDING),
            ],
            name="due",
        ),
    ],
}


T = TypeVar("T")

# PyMongo's monitor checks the server this often (the least it allows; the default is 10 s).
# A failed check clears the pool, so after an outage longer than this the first requests
# find fresh connections instead of dead ones; one small `hello` per process and interval.
HEARTBEAT_MS = 500


def open_client(url: str, timeout_ms: int = 3000) -> AsyncMongoClient[Document]:
    # Short server-selection timeout: a request must fail fast (and closed) when the
    # database is down rather than hang for PyMongo's default 30 s.
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        heartbeatFrequencyMS=HEARTBEAT_MS,
        tz_aware=True,
    )


def is_lost_connection(exc: BaseException) -> bool:
    """A connection failed under an operation (`AutoReconnect`: closed, reset), as after a
    database restart, rather than the database being unreachable (no server to select) or
    slow (a timeout: the operation may still be running, and retrying would double the wait)."""
    return isinstance(exc, AutoReconnect) and not isinstance(
        exc, NetworkTimeout | ServerSelectionTimeoutError
    )


async def retry_once(operation: Callable[[], Awaitable[T]]) -> T:
    """`operation()`, run once more if its connection was lost (`is_lost_connection`).

    Only for an operation that is idempotent: the first attempt may have been applied
    before the connection broke. Any other error, or a second failure, propagates.
    """
    try:
        return await operation()
    except AutoReconnect as exc:
        if not is_lost_connection(exc):
            raise
        log.info("mongodb connection lost, retrying once", extra={"error": str(exc)})
        return await operation()


async def insert_idempotent(collection: AsyncCollection[Document], doc: Document) -> None:
    """Insert `doc`, again once if the connection was lost; on that second attempt a
    duplicate-key error means the first one had stored it.

    Only where `doc["_id"]` is fresh (random) and `_id` is the collection's only unique
    index: FerretDB's duplicate-key errors do not say which index refused the document.
    """
    try:
        await collection.insert_one(doc)
    except AutoReconnect as exc:
        if not is_lost_connection(exc):
            raise
        log.info("mongodb connection lost, inserting again", extra={"error": str(exc)})
        with contextlib.suppress(DuplicateKeyError):
            await collection.insert_one(doc)


async def ensure_indexes(db: AsyncDatabase[Document], collections: Iterable[str]) -> None:
    """Create the declared indexes of `collections`; idempotent (same name, same spec)."""
    for name in collections:
        # One index per command: FerretDB 1.x panics on a multi-index createIndexes whose
        # indexes already exist, and one at a time is just as idempotent on MongoDB.
        for model in INDEXES.get(name, ()):
            await db[name].create_indexes([model])


async def ping(db: AsyncDatabase[Document]) -> None:
    await db.command("ping")
