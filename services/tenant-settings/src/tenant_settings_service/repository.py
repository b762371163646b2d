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
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from oidc_common.lru import Lru
from oidc_common.metrics import SETTINGS_PATH_BUCKETS
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
    """Reads and conditionally writes tenant settings documents.

    It remembers the settings it last read or wrote per tenant (bounded, least
    recently used out). A change is first tried on that copy, saving the read before the
    write: under registration load that read cost about 3 ms of a change's propagation
    (p50; `bench/propagation.py`). Nothing trusts the copy: the write is conditional on its
    version and commit time, so a copy another replica made stale costs one more round, and
    "nothing to change", when decided on the copy, is decided again on the stored settings.
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        remembered_tenants: int = 1024,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db = db
        self._collection = db[Collections.TENANT_SETTINGS]
        self._latest: Lru[str, StoredSettings] = Lru(remembered_tenants)
        # The write's share of a change's propagation, as this service sees it (the
        # database, and the client library and event loop on the way): the change reaches
        # no replica before its write is acknowledged (the outbox rule), so a slow database
        # shows here first. Every attempt counts, a conflicting or failed one too.
        self.write_seconds = Histogram(
            "tenant_settings_write_seconds",
            "Time from sending a settings change's conditional write to its answer",
            registry=registry or CollectorRegistry(),
            buckets=SETTINGS_PATH_BUCKETS,
        )

    def remembers(self, tenant_id: str) -> bool:
        """Whether `update` will first try a remembered copy (the caller need not read)."""
        return self._latest.get(tenant_id) is not None

    async def get(self, tenant_id: str) -> StoredSettings:
        doc = await self._collection.find_one({"_id": tenant_id})
        if doc is None:
            self._latest.pop(tenant_id)
            raise SettingsNotFound(tenant_id)
        return self._remember(StoredSettings.from_doc(doc))

    def _remember(self, stored: StoredSettings) -> StoredSettings:
        self._latest.put(stored.tenant_id, stored)
        return stored

    async def update(
        self,
        tenant_id: str,
        patch: Any,
        attempts: int = 20,
        read: Awaitable[StoredSettings] | None = None,
    ) -> tuple[StoredSettings, bool]:
        """Apply `patch`; returns the stored settings and whether anything changed.

        The caller holds the tenant's lock. `read` is a read of the settings the caller
        already started (while taking the lock); without it the first round uses the
        remembered copy when there is one. A change stored in between makes the conditional
        write miss, and the next round reads again; "no change" is only answered from
        settings read under the lock. Raises SettingsNotFound,
        SettingsValidationError (a bad patch), ConcurrentUpdate, or PyMongo's errors while
        the database is down."""
        connection_lost = False
        remembered = None if read is not None else self._latest.get(tenant_id)
        for _ in range(attempts):
            # `fresh`: read under the lock. The remembered copy, or a read the caller began
            # before the lock was granted, may predate a change another writer stored since.
            if remembered is not None:
                current, fresh, remembered = remembered, False, None
            elif read is not None:
                current, fresh, read = await read, False, None
            else:
                current, fresh = await self.get(tenant_id), True
            # Refused or not, whatever the base: the schema checks the patch's own members.
            merged = apply_patch(current.settings, patch)
            if merged == current.settings:
                if not fresh:
                    continue  # "no change" on settings that may be stale: ask the database
                return current, False
            try:
                doc = await self._timed_write(
                    # The commit time too: a version alone could name other settings after
                    # the database was restored under a running replica's remembered copy.
                    {
                        "_id": tenant_id,
                        "version": current.version,
                        "updated_at": current.updated_at,
                    },
                    {
                        "$set": {
                            "settings": merged,
                            "version": current.version + 1,
                            "pending_publish": True,
                            "updated_at": dt.datetime.now(dt.UTC),
                        }
                    },
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
                return self._remember(StoredSettings.from_doc(doc)), True
        raise ConcurrentUpdate(tenant_id)

    async def _timed_write(self, query: Document, update: Document) -> Document | None:
        """The conditional write (the document after it, or None when `query` matched
        nothing), timed in `write_seconds` whatever its outcome."""
        sent = time.perf_counter()
        try:
            return await self._collection.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        finally:
            self.write_seconds.observe(time.perf_counter() - sent)

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
