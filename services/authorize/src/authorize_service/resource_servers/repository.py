"""APIs (resource servers) of a tenant, in MongoDB, and the one reader every caller uses.

Stored shape (collection `resource_servers`, `_id` an ObjectId shown as 24 hex digits):

    {"_id": ObjectId, "tenant_id": str, "identifier": str, "name": str, "is_system": False,
     "scopes": [{"value": str, "description": str}, …], "signing_alg": "RS256",
     "allow_offline_access": bool, "token_lifetime": int | None,
     "skip_consent_for_verifiable_first_party_clients": bool,
     "created_at": datetime, "updated_at": datetime}

The tenant's own Management API is stored by the tenant bootstrap with identifier
`MANAGEMENT_API`, `is_system: true` and `scopes` as plain strings; the reader accepts both
scope shapes. The unique index on (tenant_id, identifier) backs identifier uniqueness.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oidc_common.management_api import MANAGEMENT_API
from oidc_common.management_requests import is_storable_text
from oidc_common.mongo import Collections, Document

SIGNING_ALG = "RS256"
# Access-token lifetimes an API may set, seconds (Auth0's ceiling: 30 days).
MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME = 60, 30 * 86400
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


class DuplicateIdentifierError(Exception):
    """The tenant already has an API with this identifier."""


@dataclass(frozen=True)
class ResourceServer:
    """An API of a tenant, the audience of the access tokens issued for it.

    `scopes` maps each scope the API defines to its description ("" when it has none), in
    definition order. `token_lifetime` None means the service's `ACCESS_TOKEN_TTL`.
    `is_system` marks the tenant's Management API; `by_prefix` an unregistered URL the tenant's
    policy lets act as a resource (RFC 8707), whose scopes are whatever the client asks."""

    id: str
    identifier: str
    name: str
    scopes: dict[str, str]
    signing_alg: str
    allow_offline_access: bool
    token_lifetime: int | None
    skip_consent_for_verifiable_first_party_clients: bool = False
    is_system: bool = False
    created_at: dt.datetime | None = field(default=None, compare=False)
    by_prefix: bool = False


def _scopes(raw: object) -> dict[str, str]:
    # Custom APIs store Auth0's [{value, description}]; the bootstrapped Management API stores
    # plain strings. Anything else (a hand-edited document) is skipped, not fatal.
    scopes: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, str):
            scopes.setdefault(item, "")
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str):
            description = item.get("description")
            scopes.setdefault(item["value"], description if isinstance(description, str) else "")
    return scopes


def resource_server(doc: Document) -> ResourceServer:
    """A stored document as a `ResourceServer`, with Auth0's defaults for absent fields."""
    lifetime = doc.get("token_lifetime")
    return ResourceServer(
        id=str(doc["_id"]),
        identifier=doc["identifier"],
        name=doc.get("name") or doc["identifier"],
        scopes=_scopes(doc.get("scopes")),
        signing_alg=doc.get("signing_alg") or SIGNING_ALG,
        allow_offline_access=bool(doc.get("allow_offline_access", False)),
        token_lifetime=lifetime if isinstance(lifetime, int) and lifetime > 0 else None,
        skip_consent_for_verifiable_first_party_clients=bool(
            doc.get("skip_consent_for_verifiable_first_party_clients", False)
        ),
        is_system=bool(doc.get("is_system", False)) or doc["identifier"] == MANAGEMENT_API,
        created_at=doc.get("created_at"),
    )


async def find_resource_server(
    db: AsyncDatabase[Document], tenant_id: str, identifier: str
) -> ResourceServer | None:
    """The tenant's API whose identifier is `identifier` (an `audience` as a client sends it,
    compared exactly), or None (also for a value no API can have).

    The internal key of the Management API (`MANAGEMENT_API`) is not an audience and finds
    nothing: the Management API is addressed by the tenant's own URL (`client_grants`)."""
    if identifier == MANAGEMENT_API or not is_storable_text(identifier):
        return None  # (a lone surrogate, possible in JSON, cannot even be sent to MongoDB)
    doc = await db[Collections.RESOURCE_SERVERS].find_one(
        {"tenant_id": tenant_id, "identifier": identifier}
    )
    return resource_server(doc) if doc is not None else None


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # MongoDB keeps ms


class ResourceServers:
    """The tenant-scoped API store behind `/api/v2/resource-servers`."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[Collections.RESOURCE_SERVERS]

    async def create(
        self,
        tenant_id: str,
        *,
        identifier: str,
        name: str,
        scopes: Iterable[tuple[str, str]],
        allow_offline_access: bool = False,
        token_lifetime: int | None = None,
        skip_consent_for_verifiable_first_party_clients: bool = False,
    ) -> ResourceServer:
        """Store a new API (already validated; `scopes` as (value, description) pairs) and
        return it. Raises `DuplicateIdentifierError` when the identifier is taken."""
        now = _now()
        doc: Document = {
            "_id": ObjectId(),
            "tenant_id": tenant_id,
            "identifier": identifier,
            "name": name,
            "is_system": False,
            "scopes": [{"value": value, "description": text} for value, text in scopes],
            "signing_alg": SIGNING_ALG,
            "allow_offline_access": allow_offline_access,
            "token_lifetime": token_lifetime,
            "skip_consent_for_verifiable_first_party_clients": (
                skip_consent_for_verifiable_first_party_clients
            ),
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise DuplicateIdentifierError(identifier) from exc
        return resource_server(doc)

    async def get(self, tenant_id: str, id_or_identifier: str) -> ResourceServer | None:
        """The tenant's API with this id, else the one with this identifier (Auth0 accepts
        either in the path), else None."""
        doc = None
        if _OBJECT_ID.fullmatch(id_or_identifier):
            doc = await self._collection.find_one(
                {"_id": ObjectId(id_or_identifier), "tenant_id": tenant_id}
            )
        if doc is None:
            doc = await self._collection.find_one(
                {"tenant_id": tenant_id, "identifier": id_or_identifier}
            )
        return resource_server(doc) if doc is not None else None

    async def list(
        self, tenant_id: str, page: int, per_page: int
    ) -> tuple[builtins.list[ResourceServer], int]:
        """One page (0-based) of the tenant's APIs, oldest first (the Management API, created
        with the tenant, leads), and how many there are."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        cursor = (
            self._collection.find(query)
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .skip(page * per_page)
            .limit(per_page)
        )
        servers = [resource_server(doc) async for doc in cursor]
        return servers, await self._collection.count_documents(query)

    async def delete(self, tenant_id: str, server: ResourceServer) -> bool:
        """Delete a (non-system) API and the client grants on it; False if already gone."""
        result = await self._collection.delete_one(
            {"_id": ObjectId(server.id), "tenant_id": tenant_id, "is_system": {"$ne": True}}
        )
        if result.deleted_count != 1:
            return False
        # Auth0 removes the grants with the API: a later API with the same identifier must not
        # inherit them.
        await self._collection.database[Collections.CLIENT_GRANTS].delete_many(
            {"tenant_id": tenant_id, "audience": server.identifier}
        )
        return True
