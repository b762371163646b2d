"""Client Information Responses (RFC 7591 §3.2.1, RFC 7592 §3) and the Management API view."""

from __future__ import annotations

import datetime as dt
from typing import Any

from oidc_common.client_metadata import uses_client_secret
from oidc_common.mongo import Document
from oidc_common.tenancy import Origin


def registration_client_uri(origin: Origin, client_id: str) -> str:
    return f"{origin.issuer}oidc/register/{client_id}"


def client_information(
    doc: Document,
    origin: Origin,
    *,
    client_secret: str | None = None,
    registration_access_token: str | None = None,
) -> dict[str, Any]:
    """Every registered value including defaults; secrets only when just issued."""
    body: dict[str, Any] = {"client_id": doc["_id"], **doc["metadata"]}
    body["client_id_issued_at"] = doc["client_id_issued_at"]
    if uses_client_secret(doc["metadata"].get("token_endpoint_auth_method")):
        if client_secret is not None:
            body["client_secret"] = client_secret
        body["client_secret_expires_at"] = 0  # never expires (Auth0: always 0)
    if registration_access_token is not None:
        body["registration_access_token"] = registration_access_token
    body["registration_client_uri"] = registration_client_uri(origin, doc["_id"])
    body["is_first_party"] = doc.get("is_first_party", False)
    return body


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def management_view(doc: Document) -> dict[str, Any]:
    """The tenant owner's view (Auth0 field names first, then the RFC 7591 metadata)."""
    metadata: dict[str, Any] = doc.get("metadata") or {}
    return {
        "client_id": doc["_id"],
        "name": doc.get("client_name") or metadata.get("client_name", ""),
        "app_type": doc.get("app_type"),
        "is_first_party": bool(doc.get("is_first_party", False)),
        "dynamically_registered": bool(doc.get("dynamic", False)),
        "callbacks": doc.get("redirect_uris", []),
        "grant_types": doc.get("grant_types", []),
        "token_endpoint_auth_method": doc.get("token_endpoint_auth_method"),
        "created_at": _iso(doc.get("created_at")),
        "updated_at": _iso(doc.get("updated_at")),
        "last_used_at": _iso(doc.get("last_used_at")),
        "metadata": metadata,
    }
