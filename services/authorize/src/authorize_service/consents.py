"""Remembered consent: what a user allowed a third-party client, per API (audience).

One document per (tenant, user, client) in `consents`, holding `grants`, a list of
`{audience, scopes}` (audience `None` for sign-in alone), so the unique index backs the rule
"one consent record per user and client". A later consent adds scopes, never removes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document


def _key(tenant_id: str, user_id: str, client_id: str) -> Document:
    return {"tenant_id": tenant_id, "user_id": user_id, "client_id": client_id}


async def consented(
    db: AsyncDatabase[Document],
    tenant_id: str,
    user_id: str,
    client_id: str,
    audience: str | None,
    scopes: Iterable[str],
) -> bool:
    """Whether the user already allowed every one of `scopes` for `audience` to the client."""
    doc = await db[Collections.CONSENTS].find_one(_key(tenant_id, user_id, client_id))
    if doc is None:
        return False
    for grant in doc.get("grants") or ():
        if grant.get("audience") == audience:
            return set(scopes) <= set(grant.get("scopes") or ())
    return False


async def remember_consent(
    db: AsyncDatabase[Document],
    tenant_id: str,
    user_id: str,
    client_id: str,
    audience: str | None,
    scopes: Iterable[str],
) -> None:
    """Add `scopes` for `audience` to the user's consent for the client (upsert)."""
    collection = db[Collections.CONSENTS]
    key = _key(tenant_id, user_id, client_id)
    doc = await collection.find_one(key) or {}
    grants = [dict(grant) for grant in doc.get("grants") or ()]
    for grant in grants:
        if grant.get("audience") == audience:
            grant["scopes"] = sorted(set(grant.get("scopes") or ()) | set(scopes))
            break
    else:
        grants.append({"audience": audience, "scopes": sorted(set(scopes))})
    await collection.update_one(
        key, {"$set": {"grants": grants, "updated_at": dt.datetime.now(dt.UTC)}}, upsert=True
    )
