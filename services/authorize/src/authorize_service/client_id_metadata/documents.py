"""The rules a fetched Client ID Metadata Document must follow, and the client it describes.

- a JSON object (RFC 8259) whose `client_id` is the Client Identifier URL, character for
  character (draft -02 §4, RFC 3986 §6.2.1 simple string comparison);
- no `client_secret` or `client_secret_expires_at` (§4.1);
- a public client: `token_endpoint_auth_method` `none` (absent means `none`: a document cannot
  hold a secret, so RFC 7591's secret-based default cannot apply). §4.1 forbids shared-secret
  methods; key-based ones (`private_key_jwt` with `jwks`/`jwks_uri`, §8.2) are allowed by the
  draft but not supported here yet, so a document declaring a key is refused too;
- every other member under the registration rules: `oidc_common.client_metadata`, the one
  schema (redirect URIs included), with the tenant's metadata limits.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from oidc_common.client_metadata import ClientMetadataError, validate_client_metadata
from oidc_common.registration_policy import RegistrationPolicy

from ..registered_clients import PUBLIC_METHOD, RegisteredClient
from .errors import MetadataDocumentError
from .urls import ClientIdUrl

SECRET_MEMBERS: Final = ("client_secret", "client_secret_expires_at")
KEY_MEMBERS: Final = ("jwks", "jwks_uri")
SHARED_SECRET_METHODS: Final = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)
AUTH_METHOD: Final = "token_endpoint_auth_method"


def _invalid(url: ClientIdUrl, reason: str) -> MetadataDocumentError:
    return MetadataDocumentError(f"The metadata document at {url.url} is not usable: {reason}")


def parse_document(url: ClientIdUrl, body: bytes | str) -> dict[str, Any]:
    """The JSON object in `body`. Raises MetadataDocumentError for anything else (invalid
    UTF-8 or JSON, `NaN`/`Infinity`, another JSON type)."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads would also guess UTF-16 and UTF-32 from bytes.
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        document = json.loads(text, parse_constant=no_constants)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _invalid(url, "it is not valid JSON (UTF-8).") from None
    if not isinstance(document, dict):
        raise _invalid(url, "it must be a JSON object.")
    return document


def _check_authentication(url: ClientIdUrl, document: dict[str, Any]) -> None:
    secrets = [name for name in SECRET_MEMBERS if name in document]
    if secrets:
        raise _invalid(url, f"it must not contain {', '.join(secrets)} (no shared secrets).")
    method = document.get(AUTH_METHOD)
    if isinstance(method, str) and method in SHARED_SECRET_METHODS:
        raise _invalid(
            url,
            f"token_endpoint_auth_method {method} needs a shared secret, which a metadata "
            "document cannot establish; use none.",
        )
    if method == "private_key_jwt" or any(document.get(name) is not None for name in KEY_MEMBERS):
        raise _invalid(
            url,
            "private_key_jwt is not supported yet: only public clients "
            "(token_endpoint_auth_method none, no jwks or jwks_uri) may use a metadata document "
            "here.",
        )
    if method is not None and method != PUBLIC_METHOD:  # absent or null: none
        shown = method if isinstance(method, str) and method.isprintable() else "(this value)"
        raise _invalid(
            url,
            f"token_endpoint_auth_method {shown[:64]} is not supported: only none may be "
            "used with a metadata document here.",
        )


def client_from_document(
    url: ClientIdUrl, document: dict[str, Any], tenant_id: str, policy: RegistrationPolicy
) -> RegisteredClient:
    """The public, third-party client `document` describes, for `tenant_id`.

    Raises MetadataDocumentError naming the first rule broken (see the module docstring)."""
    if document.get("client_id") != url.url:
        raise _invalid(url, "its client_id must be exactly the URL it is served at (draft §4).")
    _check_authentication(url, document)
    limits = dataclasses.replace(
        policy.metadata_policy(), allowed_auth_methods=frozenset({PUBLIC_METHOD})
    )
    try:
        # `client_id` is not client metadata: the schema drops it with any other unknown member.
        metadata = validate_client_metadata({**document, AUTH_METHOD: PUBLIC_METHOD}, limits)
    except ClientMetadataError as exc:
        raise _invalid(url, f"{exc.description}.") from None
    scope = metadata.get("scope")
    return RegisteredClient(
        client_id=url.url,
        tenant_id=tenant_id,
        name=str(metadata.get("client_name") or url.url),
        redirect_uris=tuple(metadata["redirect_uris"]),
        application_type=metadata["application_type"],
        response_types=frozenset(metadata["response_types"]),
        grant_types=frozenset(metadata["grant_types"]),
        token_endpoint_auth_method=PUBLIC_METHOD,
        is_first_party=False,  # whoever controls the host wrote it: always third-party
        dynamic=True,
        scope=frozenset(scope.split()) if isinstance(scope, str) else None,
        metadata=metadata,
        document_host=url.host,
    )
