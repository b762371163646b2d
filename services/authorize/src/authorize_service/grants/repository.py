"""Grants in MongoDB: one document per (tenant, user, client, API), Auth0's unit of consent.

Stored shape (collection `grants`, unique on tenant, user, client and audience):

    {"_id": str (`cgr_` + 16 random URL-safe characters), "tenant_id": str, "user_id": str,
     "client_id": str, "audience": str ("" for sign-in alone, no API), "scope": [str, ...],
     "created_at": datetime, "updated_at": datetime, "last_used_at": datetime (a sign-in
     through it; the connected-apps page shows it)}

A later consent adds scopes to the grant, never removes them. Deleting a grant makes the next
sign-in of that client ask again (`consented` finds nothing). Before this collection, consent
was kept in `consents`, one document per client; those records are no longer read, so each
user is asked once more after the upgrade.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oidc_common.mongo import Collections, Document, retry_once

GRANT_ID_PREFIX = "cgr_"
# The stored audience of a sign-in without an API.
SIGN_IN_ONLY = ""


def _audience_key(audience: str | None) -> str:
    return SIGN_IN_ONLY if audience is None else audience


@dataclass(frozen=True)
class ConsentKey:
    """Whose consent, to which client, for which API (None: sign-in alone)."""

    tenant_id: str
    user_id: str
    client_id: str
    audience: str | None

    def document_filter(self) -> Document:
        return {
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "client_id": self.client_id,
            "audience": _audience_key(self.audience),
        }


@dataclass(frozen=True)
class Grant:
    id: str
    tenant_id: str
    user_id: str
    client_id: str
    audience: str | None  # None: sign-in alone
    scopes: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    last_used_at: dt.datetime | None = None

    @classmethod
    def from_document(cls, doc: Document) -> Grant:
        audience = str(doc.get("audience") or "")
        return cls(
            id=str(doc["_id"]),
            tenant_id=str(doc["tenant_id"]),
            user_id=str(doc["user_id"]),
            client_id=str(doc["client_id"]),
            audience=audience or None,
            scopes=tuple(str(scope) for scope in doc.get("scope") or ()),
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at") or doc["created_at"],
            last_used_at=doc.get("last_used_at"),
        )


@dataclass(frozen=True)
class GrantQuery:
    """Filters of a grant listing (Auth0's `user_id`, `client_id`, `audience`)."""

    user_id: str | None = None
    client_id: str | None = None
    audience: str | None = None  # "" matches sign-in alone

    def document_filter(self, tenant_id: str) -> Document:
        query: Document = {"tenant_id": tenant_id}
        for name in ("user_id", "client_id", "audience"):
            value = getattr(self, name)
            if value is not None:
                query[name] = value
        return query


class Grants:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[Collections.GRANTS]

    async def consented(self, key: ConsentKey, scopes: Iterable[str]) -> bool:
        """Whether the user already allowed every one of `scopes` to the client for the API."""
        doc = await self._collection.find_one(key.document_filter(), {"scope": 1})
        return doc is not None and set(scopes) <= set(doc.get("scope") or ())

    async def remember(self, key: ConsentKey, scopes: Iterable[str]) -> None:
        """Add `scopes` to the user's grant for the client and API, creating it if needed."""
        wanted = set(scopes)
        for _ in range(3):  # a concurrent first consent may win the insert: then update it
            doc = await self._collection.find_one(key.document_filter())
            now = dt.datetime.now(dt.UTC)
            if doc is not None:
                merged = sorted(set(doc.get("scope") or ()) | wanted)
                await self._set_scopes(doc["_id"], merged, now)
                return
            try:
                await self._collection.insert_one(
                    {
                        "_id": GRANT_ID_PREFIX + secrets.token_urlsafe(12),
                        **key.document_filter(),
                        "scope": sorted(wanted),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                return
            except DuplicateKeyError:
                continue
        raise RuntimeError("the grant could not be stored")

    async def used(self, key: ConsentKey) -> None:
        """A sign-in went through the grant now (idempotent, so retried once if need be)."""
        update = {"$set": {"last_used_at": dt.datetime.now(dt.UTC)}}
        await retry_once(lambda: self._collection.update_one(key.document_filter(), update))

    async def _set_scopes(self, grant_id: str, scopes: list[str], now: dt.datetime) -> None:
        update = {"$set": {"scope": scopes, "updated_at": now}}
        # The same $set twice leaves the same document: safe to retry.
        await retry_once(lambda: self._collection.update_one({"_id": grant_id}, update))

    async def page(
        self, tenant_id: str, query: GrantQuery, page: int, per_page: int
    ) -> tuple[list[Grant], int]:
        """A page of the tenant's grants matching `query` (oldest first) and their total."""
        selector = query.document_filter(tenant_id)
        cursor = (
            self._collection.find(selector)
            .sort([("created_at", 1), ("_id", 1)])
            .skip(page * per_page)
            .limit(per_page)
        )
        grants = [Grant.from_document(doc) async for doc in cursor]
        return grants, await self._collection.count_documents(selector)

    async def of_user(self, tenant_id: str, user_id: str) -> list[Grant]:
        cursor = self._collection.find({"tenant_id": tenant_id, "user_id": user_id}).sort(
            [("created_at", 1), ("_id", 1)]
        )
        return [Grant.from_document(doc) async for doc in cursor]

    async def get(self, tenant_id: str, grant_id: str) -> Grant | None:
        doc = await self._collection.find_one({"_id": grant_id, "tenant_id": tenant_id})
        return Grant.from_document(doc) if doc is not None else None

    async def delete(self, grant: Grant) -> bool:
        result = await self._collection.delete_one({"_id": grant.id, "tenant_id": grant.tenant_id})
        return result.deleted_count == 1

    async def delete_client(self, tenant_id: str, client_id: str) -> None:
        await self._collection.delete_many({"tenant_id": tenant_id, "client_id": client_id})

    async def delete_user(self, tenant_id: str, user_id: str) -> None:
        await self._collection.delete_many({"tenant_id": tenant_id, "user_id": user_id})
