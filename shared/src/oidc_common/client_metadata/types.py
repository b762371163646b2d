"""What a client may be: its application type, token endpoint authentication method, grant
types and response types (RFC 7591 §2 and §2.1, OpenID Connect DCR 1.0 §2).

TOKEN_ENDPOINT_AUTH_METHODS is the one list of client authentication methods this server
supports: client metadata, the tenant's registration policy and discovery all read it.
"""

from __future__ import annotations

from typing import Any, Final

from .errors import fail
from .values import dedupe, listing, show, string_list

__all__ = [
    "APPLICATION_TYPES",
    "CLIENT_ASSERTION_ALGS",
    "CLIENT_SECRET_METHODS",
    "GRANT_TYPES",
    "PRIVATE_KEY_JWT",
    "RESPONSE_TYPES",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "auth_method",
    "default_auth_method",
    "grant_types",
    "link_grant_and_response_types",
    "response_types",
    "uses_client_secret",
]

TOKEN_ENDPOINT_AUTH_METHODS: Final[frozenset[str]] = frozenset(
    {"none", "client_secret_post", "client_secret_basic", "private_key_jwt"}
)
# The methods that authenticate with a client secret: only their clients are issued one.
# (`client_secret_jwt` is not offered: secrets are stored hashed, so no HMAC can be checked.)
CLIENT_SECRET_METHODS: Final[frozenset[str]] = frozenset(
    {"client_secret_post", "client_secret_basic"}
)
PRIVATE_KEY_JWT: Final = "private_key_jwt"
# RFC 7523 client assertions: asymmetric signatures only (OIDC Core §9 private_key_jwt).
CLIENT_ASSERTION_ALGS: Final[frozenset[str]] = frozenset({"RS256", "PS256", "ES256"})
GRANT_TYPES: Final[frozenset[str]] = frozenset(
    {"authorization_code", "implicit", "refresh_token", "client_credentials"}
)
RESPONSE_TYPES: Final[frozenset[str]] = frozenset({"code", "token", "id_token", "id_token token"})
APPLICATION_TYPES: Final[frozenset[str]] = frozenset({"web", "native"})

DEFAULT_AUTH_METHOD: Final = "client_secret_post"  # RFC 7591 §2
# Response types of the implicit grant, in the order they are derived (RFC 7591 §2.1).
IMPLICIT_RESPONSE_TYPES: Final = ("token", "id_token", "id_token token")


def uses_client_secret(method: object) -> bool:
    """Whether a client with token_endpoint_auth_method `method` is issued a client secret."""
    return method in CLIENT_SECRET_METHODS


def application_type(value: object) -> str:
    """`web` or `native` (OIDC DCR §2)."""
    if not isinstance(value, str) or value not in APPLICATION_TYPES:
        fail("application_type", "must be 'web' or 'native'", "application_type")
    return value


def auth_method(value: object, allowed: frozenset[str]) -> str:
    """A supported token endpoint authentication method that `allowed` (the tenant's policy)
    lets clients register."""
    field = "token_endpoint_auth_method"
    allowed = allowed & TOKEN_ENDPOINT_AUTH_METHODS
    if not isinstance(value, str):
        fail(field, "must be a string", field)
    if value not in TOKEN_ENDPOINT_AUTH_METHODS:
        fail(
            field,
            f"unsupported value {show(value)}; supported: {listing(TOKEN_ENDPOINT_AUTH_METHODS)}",
            field,
        )
    if value not in allowed:
        fail(field, f"{value!r} is not allowed here; allowed: {listing(allowed)}", field)
    return value


def default_auth_method(allowed: frozenset[str]) -> str:
    """The method of a client that names none: `client_secret_post` (RFC 7591 §2), else the
    other secret-based method when the policy forbids it; never silently a public client."""
    field = "token_endpoint_auth_method"
    allowed = allowed & TOKEN_ENDPOINT_AUTH_METHODS
    # RFC 7591 §2 lets the server substitute a value.
    for method in (DEFAULT_AUTH_METHOD, "client_secret_basic"):
        if method in allowed:
            return method
    fail(field, f"is required by this server; allowed: {listing(allowed)}", field)


def grant_types(value: object) -> list[str]:
    """A non-empty list of supported grant types, deduplicated."""
    field = "grant_types"
    grants = dedupe(string_list(value, field))
    for index, grant in enumerate(grants):
        if grant not in GRANT_TYPES:
            fail(
                f"{field}[{index}]",
                f"unsupported grant type {show(grant)}; supported: {listing(GRANT_TYPES)}",
                field,
            )
    if not grants:
        fail(field, "must not be empty", field)
    return grants


def response_types(value: object) -> list[str]:
    """A list of supported response types, `token id_token` spelled `id_token token`,
    deduplicated. May be empty (a client_credentials client)."""
    field = "response_types"
    normalised = [
        "id_token token" if item == "token id_token" else item for item in string_list(value, field)
    ]
    for index, item in enumerate(normalised):
        if item not in RESPONSE_TYPES:
            fail(
                f"{field}[{index}]",
                f"unsupported response type {show(item)}; "
                "supported: code, id_token, token, id_token token",
                field,
            )
    return dedupe(normalised)


def _grants_for(responses: list[str]) -> list[str]:
    if not responses:
        fail("response_types", "must not be empty when grant_types is omitted", "response_types")
    grants = []
    if "code" in responses:
        grants.append("authorization_code")
    if any(item in IMPLICIT_RESPONSE_TYPES for item in responses):
        grants.append("implicit")
    return grants


def _responses_for(grants: list[str]) -> list[str]:
    responses = []
    if "authorization_code" in grants:
        responses.append("code")
    if "implicit" in grants:
        responses.extend(IMPLICIT_RESPONSE_TYPES)
    return responses


def _check_correspondence(grants: list[str], responses: list[str]) -> None:
    uses_code = "code" in responses
    uses_implicit = any(item in IMPLICIT_RESPONSE_TYPES for item in responses)
    if uses_code != ("authorization_code" in grants):
        fail(
            "grant_types",
            "response type 'code' and grant type 'authorization_code' must be registered "
            "together (RFC 7591 §2.1)",
            "grant_types",
        )
    if uses_implicit != ("implicit" in grants):
        fail(
            "grant_types",
            "response types 'token'/'id_token' and grant type 'implicit' must be registered "
            "together (RFC 7591 §2.1)",
            "grant_types",
        )


def link_grant_and_response_types(metadata: dict[str, Any]) -> None:
    """RFC 7591 §2.1 on checked metadata: derive whichever of `grant_types` and
    `response_types` is missing from the other (both missing: the authorization code flow),
    check that given ones correspond, and that the grants suit the client's authentication."""
    grants: list[str] | None = metadata.get("grant_types")
    responses: list[str] | None = metadata.get("response_types")
    if grants is None and responses is None:
        grants, responses = ["authorization_code"], ["code"]
    elif grants is None:
        assert responses is not None
        grants = _grants_for(responses)
    elif responses is None:
        responses = _responses_for(grants)
    else:
        _check_correspondence(grants, responses)
    if "refresh_token" in grants and "authorization_code" not in grants:
        fail("grant_types", "refresh_token requires authorization_code", "grant_types")
    if "client_credentials" in grants and metadata["token_endpoint_auth_method"] == "none":
        fail(
            "grant_types",
            "client_credentials requires a confidential client "
            "(token_endpoint_auth_method other than 'none')",
            "grant_types",
        )
    metadata["grant_types"], metadata["response_types"] = grants, responses
