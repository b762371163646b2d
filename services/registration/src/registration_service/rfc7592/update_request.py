"""The client update request of RFC 7592 §2.2: a full replacement of the client's metadata."""

from __future__ import annotations

from typing import Any, Final

from oidc_common.client_metadata import (
    DEFAULT_POLICY,
    INVALID_CLIENT_METADATA,
    ClientMetadataError,
    MetadataPolicy,
    validate_client_metadata,
)
from oidc_common.client_metadata.errors import fail

__all__ = ["UPDATE_FORBIDDEN_FIELDS", "validate_update_request"]

# RFC 7592 §2.2: server-managed members a client must not send back in an update.
UPDATE_FORBIDDEN_FIELDS: Final = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


def validate_update_request(
    raw: object, client_id: str, policy: MetadataPolicy = DEFAULT_POLICY
) -> tuple[dict[str, Any], str | None]:
    """Validate an RFC 7592 §2.2 client update request for the client `client_id`.

    Returns the metadata exactly as `validate_client_metadata` would (omitted members take
    their defaults) and the `client_secret` the client sent, if any, for the caller to compare
    with the current one. Raises ClientMetadataError, and nothing else, for any JSON value.
    """
    if not isinstance(raw, dict):
        raise ClientMetadataError(INVALID_CLIENT_METADATA, "request body must be a JSON object")
    given = raw.get("client_id")
    if given is None:
        fail("client_id", "is required in an update request (RFC 7592 §2.2)", "client_id")
    if not isinstance(given, str) or given != client_id:
        fail("client_id", "does not match the client being updated", "client_id")
    for name in UPDATE_FORBIDDEN_FIELDS:
        if name in raw:
            fail(name, "must not be sent in an update request (RFC 7592 §2.2)", name)
    secret = raw.get("client_secret")
    if secret is not None and not isinstance(secret, str):
        fail("client_secret", "must be a string", "client_secret")
    return validate_client_metadata(raw, policy), secret
