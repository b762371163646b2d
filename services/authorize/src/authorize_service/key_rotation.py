"""Signing-key rotation: a new current key, the old one kept published until its tokens expire.

There are no transactions (FerretDB), so the writes are ordered for crash safety: the new key
is inserted as current first, then the old current key is demoted by its kid. A crash in
between leaves two current keys, which readers resolve by signing with the newest
(keystore.newest_current); the tenant is never without a current key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document
from oidc_common.signing_keys import SIGNING_ALG, generate_signing_key, sealed_private_key

from .keystore import CURRENT, PREVIOUS, RETIRED

# Covers the clock skew of verifiers and the signing-key cache of the service replicas, which
# may go on signing with the old key for up to SIGNING_CACHE_SECONDS (60 s) after rotation.
PUBLISH_LEEWAY = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Rotation:
    tenant_id: str
    new_kid: str
    demoted_kids: tuple[str, ...]
    publish_until: dt.datetime
    retired_count: int


async def rotate_signing_key(
    db: AsyncDatabase[Document],
    tenant_id: str,
    kek: bytes,
    access_token_ttl: int,
    *,
    now: dt.datetime | None = None,
) -> Rotation:
    now = now or dt.datetime.now(dt.UTC)
    keys = db[Collections.SIGNING_KEYS]
    key = generate_signing_key()

    # 1. The new key becomes current before anything else changes.
    await keys.insert_one(
        {
            "tenant_id": tenant_id,
            "kid": key.kid,
            "alg": SIGNING_ALG,
            "status": CURRENT,
            "public_jwk": key.public_jwk,
            "sealed_private_key": sealed_private_key(key, kek),
            "created_at": now,
        }
    )

    # 2. Every other current key is demoted, by kid, and stays published until the last token
    #    it may have signed has expired.
    publish_until = now + dt.timedelta(seconds=access_token_ttl) + PUBLISH_LEEWAY
    old = keys.find(
        {"tenant_id": tenant_id, "status": CURRENT, "kid": {"$ne": key.kid}}, {"kid": 1}
    )
    demoted = tuple([str(doc["kid"]) async for doc in old])
    for kid in demoted:
        await keys.update_one(
            {"tenant_id": tenant_id, "kid": kid, "status": CURRENT},
            {"$set": {"status": PREVIOUS, "publish_until": publish_until, "demoted_at": now}},
        )

    # 3. Previous keys whose window has closed are retired; their private key is of no
    #    further use, so it is deleted rather than kept sealed.
    retired = await keys.update_many(
        {"tenant_id": tenant_id, "status": PREVIOUS, "publish_until": {"$lte": now}},
        {"$set": {"status": RETIRED, "retired_at": now}, "$unset": {"sealed_private_key": ""}},
    )
    return Rotation(tenant_id, key.kid, demoted, publish_until, retired.modified_count)
