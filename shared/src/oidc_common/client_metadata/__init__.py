"""Client metadata: one declarative schema for every way a client's metadata arrives.

RFC 7591 §2 / §3.1 and OpenID Connect Dynamic Client Registration 1.0 §2, with the native-app
redirect rules of RFC 8252 §7 (through `oidc_common.redirect_uris`). Anyone on the internet may
register, so every member is checked for type, size and content.

- `schema`: the table of members (type, default, check, section) and `validate_client_metadata`
- `types`: application, grant and response types, token endpoint auth methods (RFC 7591 §2.1)
- `values`: checks of single values (text, lists, URLs, scope, contacts, JWKs, integers)
- `policy`: `MetadataPolicy`, a tenant's limits on top of the protocol rules
- `errors`: `ClientMetadataError` and the RFC 7591 §3.2.2 codes
"""

from .errors import INVALID_CLIENT_METADATA, INVALID_REDIRECT_URI, ClientMetadataError
from .policy import DEFAULT_POLICY, MetadataPolicy
from .schema import (
    CLIENT_METADATA_FIELDS,
    LOCALIZABLE_FIELDS,
    SCHEMA,
    is_client_metadata_member,
    validate_client_metadata,
)
from .types import (
    CLIENT_ASSERTION_ALGS,
    GRANT_TYPES,
    PRIVATE_KEY_JWT,
    RESPONSE_TYPES,
    TOKEN_ENDPOINT_AUTH_METHODS,
    uses_client_secret,
)

__all__ = [
    "CLIENT_ASSERTION_ALGS",
    "CLIENT_METADATA_FIELDS",
    "DEFAULT_POLICY",
    "GRANT_TYPES",
    "INVALID_CLIENT_METADATA",
    "INVALID_REDIRECT_URI",
    "LOCALIZABLE_FIELDS",
    "PRIVATE_KEY_JWT",
    "RESPONSE_TYPES",
    "SCHEMA",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "ClientMetadataError",
    "MetadataPolicy",
    "is_client_metadata_member",
    "uses_client_secret",
    "validate_client_metadata",
]
