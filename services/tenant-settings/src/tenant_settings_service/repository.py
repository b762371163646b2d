"""Tenant settings in MongoDB: versioned documents with an outbox flag.

Each accepted change bumps `version` and sets `pending_publish` in the same single-document
update (no transaction needed); the flag is cleared only once the event for that exact
version was confirmed by the broker. Writers hold the per-tenant lock of the publisher
(FerretDB's conditional updates are not atomic); the `version` condition stays as a second
guard that real MongoDB enforces atomically.

Both writes survive a lost connection (the database restarted under them): the version
condition makes each idempotent, so `update` re-reads and either finds its own write applied
or tries again, and `mark_published` simply runs again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from oidc_common.mongo import Collections, Document, is_lost_connection, retry_once

from .patch import apply_patch


class SettingsNotFound(LookupError):
    pass


class ConcurrentUpdate(RuntimeError):
    """Too many concurrent writers kept winning the race."""


@dataclass(frozen=True)
class StoredSettings:
    tenant_id: str
    version: int
    settings: dict[str, Any]
    updated_at: dt.datetime
    pending: bool = False

    @classmethod
    def from_doc(cls, doc: Document) -> StoredSettings:
        return cls(
            str(doc["_id"]),
            int(doc["version"]),
            dict(doc["settings"]),
            doc["updated_at"],
            bool(doc.get("pending_publish", False)),
        )


class SettingsRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._collection = db[Collections.TENANT_SETTINGS]

    async def get(self, tenant_id: str) -> StoredSettings:
        doc = await self._collection.find_one({"_id": tenant_id})
        if doc is None:
            raise SettingsNotFound(tenant_id)
        return StoredSettings.from_doc(doc)

    async def update(
        self,
        tenant_id: str,
        patch: Any,
        attempts: int = 20,
        read: Awaitable[StoredSettings] | None = None,
    ) -> tuple[StoredSettings, bool]:
        """Apply `patch`; returns the stored settings and whether anything changed.

        The caller holds the tenant's lock. `read` is a read of the settings the caller
        already started (while taking the lock): a change stored in between makes the
        conditional write miss, and the next round reads again. Raises SettingsNotFound,
        SettingsValidationError (a bad patch), ConcurrentUpdate, or PyMongo's errors while
        the database is down."""
        connection_lost = False
        for _ in range(attempts):
            current = await (read or self.get(tenant_id))
            read = None
            merged = apply_patch(current.settings, patch)
            if merged == current.settings:
                return current, False
            try:
                doc = await self._collection.find_one_and_update(
                    {"_id": tenant_id, "version": current.version},
                    {
                        "$set": {
                            "settings": merged,
                            "version": current.version + 1,
                            "pending_publish": True,
                            "updated_at": dt.datetime.now(dt.UTC),
                        }
                    },
                    return_document=ReturnDocument.AFTER,
                )
            except AutoReconnect as exc:
                if connection_lost or not is_lost_connection(exc):
                    raise
                connection_lost = True  # once: a second loss is an outage, answered 503
                after = await self.get(tenant_id)
                if after.version == current.version + 1 and after.settings == merged:
                    return after, True  # it was applied before the connection broke
                continue  # not applied: the next round re-reads and writes again
            if doc is not None:
                return StoredSettings.from_doc(doc), True
        raise ConcurrentUpdate(tenant_id)

    async def mark_published(self, tenant_id: str, version: int) -> None:
        # Only clears the flag if no newer version was stored meanwhile; idempotent.
        await retry_once(
            lambda: self._collection.update_one(
                {"_id": tenant_id, "version": version},
                {"$set": {"pending_publish": False, "published_version": version}},
            )
        )

    async def pending(self, limit: int = 100) -> list[StoredSettings]:
        cursor = self._collection.find({"pending_publish": True}).limit(limit)
        return [StoredSettings.from_doc(doc) async for doc in cursor]

    async def pending_count(self) -> int:
        return await self._collection.count_documents({"pending_publish": True})
