"""Clients in MongoDB (this service owns the `clients` collection).

Validated client metadata lives in `metadata`; the few members other services query
(`redirect_uris`, `grant_types`, `token_endpoint_auth_method`, `application_type`,
`client_name`) are mirrored at the top level, always written together from the same
metadata. Secrets and registration access tokens are stored only as hashes. A reaped client
keeps a tombstone (`reaped_at`, no credentials) so it can be told to register again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document

from .batching import InsertBatcher

MIRRORED_FIELDS = (
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "application_type",
)

LIVE = {"reaped_at": None}


def never_used_filter(tenant_id: str, created_before: dt.datetime | None = None) -> Document:
    """Live dynamic clients never used (registered before `created_before`, if given)."""
    query: Document = {"tenant_id": tenant_id, "dynamic": True, "last_used_at": None, **LIVE}
    if created_before is not None:
        query["created_at"] = {"$lt": created_before}
    return query


def idle_filter(tenant_id: str, before: dt.datetime) -> Document:
    """Live dynamic clients last used before `before` whose users hold no live refresh token."""
    return {
        "tenant_id": tenant_id,
        "dynamic": True,
        "last_used_at": {"$lt": before},
        **LIVE,
        "$or": [
            {"refresh_tokens_live_until": None},
            {"refresh_tokens_live_until": {"$lt": dt.datetime.now(dt.UTC)}},
        ],
    }


def app_type(metadata: dict[str, Any]) -> str:
    """Auth0's application type for registered metadata."""
    if metadata.get("application_type") == "native":
        return "native"
    if metadata.get("token_endpoint_auth_method") == "none":
        return "spa"
    if metadata.get("grant_types") == ["client_credentials"]:
        return "non_interactive"
    return "regular_web"


def metadata_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    fields = {name: metadata[name] for name in MIRRORED_FIELDS if name in metadata}
    fields["metadata"] = metadata
    fields["app_type"] = app_type(metadata)
    return fields


class ClientRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._clients = db[Collections.CLIENTS]
        self._batcher = InsertBatcher(self._clients)

    async def insert(self, doc: Document) -> None:
        await self._batcher.insert(doc)

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for inserts still queued (shutdown); True if none is."""
        return await self._batcher.drain(timeout)

    async def get(self, tenant_id: str, client_id: str) -> Document | None:
        return await self._clients.find_one({"_id": client_id, "tenant_id": tenant_id})

    async def replace_metadata(
        self,
        tenant_id: str,
        client_id: str,
        metadata: dict[str, Any],
        extra: dict[str, Any] | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Document | None:
        """Replace the metadata of a live client; `expect` adds conditions (e.g. the current
        registration access token hash) so a concurrent change makes this a no-op."""
        update: dict[str, Any] = {
            "$set": {
                **metadata_fields(metadata),
                **(extra or {}),
                "updated_at": dt.datetime.now(dt.UTC),
            }
        }
        unset = {name: "" for name in MIRRORED_FIELDS if name not in metadata}
        if unset:
            update["$unset"] = unset
        return await self._clients.find_one_and_update(
            {"_id": client_id, "tenant_id": tenant_id, **LIVE, **(expect or {})},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def set_fields(self, tenant_id: str, client_id: str, fields: dict[str, Any]) -> bool:
        result = await self._clients.update_one(
            {"_id": client_id, "tenant_id": tenant_id, **LIVE}, {"$set": fields}
        )
        return result.matched_count == 1

    async def delete(self, tenant_id: str, client_id: str) -> bool:
        """Delete a live client (a tombstone is the reaper's; its slot was already freed)."""
        result = await self._clients.delete_one({"_id": client_id, "tenant_id": tenant_id, **LIVE})
        return result.deleted_count == 1

    async def count_dynamic(self, tenant_id: str) -> int:
        return await self._clients.count_documents(
            {"tenant_id": tenant_id, "dynamic": True, **LIVE}
        )

    async def never_used(
        self, tenant_id: str, limit: int, created_before: dt.datetime | None = None
    ) -> list[str]:
        cursor = (
            self._clients.find(never_used_filter(tenant_id, created_before), {"_id": 1})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def idle_since(self, tenant_id: str, before: dt.datetime, limit: int) -> list[str]:
        cursor = self._clients.find(idle_filter(tenant_id, before), {"_id": 1}).limit(limit)
        return [str(doc["_id"]) async for doc in cursor]

    async def reap(self, client_id: str, still_matching: dict[str, Any]) -> bool:
        """Turn a live dynamic client into a tombstone, only if it still matches the filter
        it was selected by (a client used since then is spared); False otherwise."""
        result = await self._clients.update_one(
            {**still_matching, "_id": client_id},
            {
                "$set": {"reaped_at": dt.datetime.now(dt.UTC)},
                "$unset": {"client_secret_hash": "", "registration_access_token_hash": ""},
            },
        )
        return result.modified_count == 1

    async def purge_tombstones(self, tenant_id: str, reaped_before: dt.datetime) -> int:
        result = await self._clients.delete_many(
            {"tenant_id": tenant_id, "reaped_at": {"$lt": reaped_before}}
        )
        return result.deleted_count

    async def tenants_with_dynamic_clients(self) -> list[str]:
        return [str(t) for t in await self._clients.distinct("tenant_id", {"dynamic": True})]

    async def page(
        self, tenant_id: str, page: int, per_page: int, is_first_party: bool | None
    ) -> tuple[list[Document], int]:
        query: dict[str, Any] = {"tenant_id": tenant_id, **LIVE}
        if is_first_party is not None:
            query["is_first_party"] = is_first_party
        cursor = (
            self._clients.find(query)
            .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
            .skip(page * per_page)
            .limit(per_page)
        )
        docs = [doc async for doc in cursor]
        total = await self._clients.count_documents(query)
        return docs, total
