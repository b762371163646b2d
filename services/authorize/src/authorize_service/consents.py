"""Remembered consent: what a user allowed a third-party client, per API (audience).

One document per (tenant, user, client) in `consents`, holding `grants`, a list of
`{audience, scopes}` (audience `None` for sign-in alone), so the unique index backs the rule
"one consent record per user and client". A later consent adds scopes, never removes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document, retry_once


@dataclass(frozen=True)
class ConsentKey:
    """Whose consent, to which client, for which API."""

    tenant_id: str
    user_id: str
    client_id: str
    audience: str | None

    def document_filter(self) -> Document:
        return {"tenant_id": self.tenant_id, "user_id": self.user_id, "client_id": self.client_id}


async def consented(db: AsyncDatabase[Document], key: ConsentKey, scopes: Iterable[str]) -> bool:
    """Whether the user already allowed every one of `scopes` to the client for the API."""
    doc = await db[Collections.CONSENTS].find_one(key.document_filter())
    for grant in (doc or {}).get("grants") or ():
        if grant.get("audience") == key.audience:
            return set(scopes) <= set(grant.get("scopes") or ())
    return False


async def remember_consent(
    db: AsyncDatabase[Document], key: ConsentKey, scopes: Iterable[str]
) -> None:
    """Add `scopes` for the API to the user's consent for the client (upsert)."""
    collection = db[Collections.CONSENTS]
    doc = await collection.find_one(key.document_filter()) or {}
    grants = [dict(grant) for grant in doc.get("grants") or ()]
    for grant in grants:
        if grant.get("audience") == key.audience:
            grant["scopes"] = sorted(set(grant.get("scopes") or ()) | set(scopes))
            break
    else:
        grants.append({"audience": key.audience, "scopes": sorted(set(scopes))})
    update = {"$set": {"grants": grants, "updated_at": dt.datetime.now(dt.UTC)}}
    # The same upsert twice leaves the same document: safe to retry after a lost connection.
    await retry_once(lambda: collection.update_one(key.document_filter(), update, upsert=True))
