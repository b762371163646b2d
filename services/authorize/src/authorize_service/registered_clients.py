"""The registered client as `/authorize` and the interaction pages see it.

Clients are owned by the registration service; this service only reads them (within the
request's tenant) and records their use. A reaped client keeps a tombstone (`reaped_at`),
which is not a usable client here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document, retry_once

PUBLIC_METHOD = "none"


@dataclass(frozen=True)
class RegisteredClient:
    """A live client of one tenant, reduced to what authorization needs."""

    client_id: str
    tenant_id: str
    name: str
    redirect_uris: tuple[str, ...]
    application_type: str  # "web" or "native" (OIDC DCR §2)
    response_types: frozenset[str]
    grant_types: frozenset[str]
    token_endpoint_auth_method: str
    is_first_party: bool
    dynamic: bool
    scope: frozenset[str] | None  # the registered `scope` member, if any (RFC 7591 §2)
    metadata: dict[str, Any]
    # The host publishing this client's Client ID Metadata Document; None for a client of
    # the database. Such a client has no record here: nothing records its use.
    document_host: str | None = None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == PUBLIC_METHOD

    @property
    def software(self) -> str | None:
        """`software_id` and `software_version` (RFC 7591 §2) as one line, when registered."""
        parts = [self.metadata.get(name) for name in ("software_id", "software_version")]
        text = " ".join(part for part in parts if isinstance(part, str))
        return text or None

    def uri(self, name: str) -> str | None:
        """A registered branding URI (`logo_uri`, `policy_uri`, `tos_uri`, `client_uri`)."""
        value = self.metadata.get(name)
        return value if isinstance(value, str) else None

    @classmethod
    def from_document(cls, doc: Document) -> RegisteredClient:
        metadata = doc.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}

        def strings(name: str) -> list[str]:
            value = doc.get(name, metadata.get(name))
            return [str(item) for item in value] if isinstance(value, list) else []

        scope = metadata.get("scope")
        return cls(
            client_id=str(doc["_id"]),
            tenant_id=str(doc["tenant_id"]),
            name=str(doc.get("client_name") or doc.get("name") or doc["_id"]),
            redirect_uris=tuple(strings("redirect_uris")),
            application_type=str(doc.get("application_type") or "web"),
            response_types=frozenset(strings("response_types")),
            grant_types=frozenset(strings("grant_types")),
            token_endpoint_auth_method=str(
                doc.get("token_endpoint_auth_method") or "client_secret_post"
            ),
            is_first_party=doc.get("is_first_party") is True,
            dynamic=doc.get("dynamic") is True,
            scope=frozenset(scope.split()) if isinstance(scope, str) else None,
            metadata=metadata,
        )


async def find_live_client(
    db: AsyncDatabase[Document], tenant_id: str, client_id: str
) -> RegisteredClient | None:
    """The live client `client_id` of `tenant_id`; None when unknown, reaped or evicted."""
    doc = await db[Collections.CLIENTS].find_one(
        {"_id": client_id, "tenant_id": tenant_id, "reaped_at": None},
        {"client_secret_hash": 0, "registration_access_token_hash": 0},
    )
    return RegisteredClient.from_document(doc) if doc is not None else None


async def record_client_use(db: AsyncDatabase[Document], tenant_id: str, client_id: str) -> bool:
    """Set the client's `last_used_at` (the reaper reads it) while it is live.

    Returns False when the client was reaped or deleted meanwhile: nothing may be issued.
    """
    used_at = dt.datetime.now(dt.UTC)
    # Idempotent ($set; `matched_count` the same the second time): retried after a lost
    # connection.
    result = await retry_once(
        lambda: db[Collections.CLIENTS].update_one(
            {"_id": client_id, "tenant_id": tenant_id, "reaped_at": None},
            {"$set": {"last_used_at": used_at}},
        )
    )
    return result.matched_count == 1


async def extend_refresh_token_life(
    db: AsyncDatabase[Document], tenant_id: str, client_id: str, until: dt.datetime
) -> None:
    """Tell the reaper the client's users hold a refresh token valid until `until`."""
    await retry_once(
        lambda: db[Collections.CLIENTS].update_one(
            {"_id": client_id, "tenant_id": tenant_id},
            {"$max": {"refresh_tokens_live_until": until}},
        )
    )
