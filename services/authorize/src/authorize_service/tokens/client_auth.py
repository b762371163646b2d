"""Client authentication at the token endpoint (RFC 6749 §2.3.1).

A confidential client authenticates with its secret, either in an HTTP Basic Authorization
header (`client_secret_basic`) or in the body (`client_secret_post`); a public client
(`token_endpoint_auth_method` `none`) only names itself with `client_id`. Clients are looked
up within the request's tenant only, so a client of one tenant does not exist for another.
`mark_used` records a successful use, or refuses a client reaped since it was read.
A `client_id` that is not in the database but is an https URL may name a Client ID Metadata
Document (where the tenant allows them): such a client is public and is never marked used.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.client_metadata import PRIVATE_KEY_JWT
from oidc_common.credentials import hash_secret, verify_secret
from oidc_common.errors import OAuthError
from oidc_common.mongo import Collections, Document
from oidc_common.service import DB
from oidc_common.tenancy import ORIGIN, TENANT

from ..client_id_metadata.errors import MetadataDocumentError
from ..client_id_metadata.resolver import metadata_document_client
from ..registered_clients import record_client_use
from ..resources import CLIENT_JWKS, USED_ASSERTIONS
from .client_assertions import (
    JWT_BEARER,
    assertion_client_id,
    assertion_kid,
    verify_client_assertion,
)
from .client_jwks import JwksUnavailable
from .request import TokenRequest

# token_endpoint_auth_method values (RFC 7591 §2).
BASIC_METHOD = "client_secret_basic"
POST_METHOD = "client_secret_post"
NONE_METHOD = "none"
JWT_METHOD = PRIVATE_KEY_JWT  # RFC 7523, OIDC Core §9

# RFC 6749 Appendix A.1: client_id = *VSCHAR. Anything else cannot name a client.
_VSCHARS = re.compile(r"^[\x20-\x7e]{1,256}$")
# Compared against when the client is unknown, so that case costs the same as a wrong secret.
_UNKNOWN_CLIENT_HASH = hash_secret("unknown-client")


@dataclass(frozen=True)
class PresentedCredentials:
    """What the request offered, before anything was checked."""

    client_id: str
    client_secret: str | None
    method: str  # client_secret_basic, client_secret_post, none or private_key_jwt
    assertion: str | None = None  # private_key_jwt's client_assertion

    @property
    def used_basic(self) -> bool:
        return self.method == BASIC_METHOD


@dataclass(frozen=True)
class AuthenticatedClient:
    client_id: str
    method: str
    document: Document

    @property
    def is_public(self) -> bool:
        return self.document.get("token_endpoint_auth_method") == NONE_METHOD

    @property
    def from_metadata_document(self) -> bool:
        """Named by its Client ID Metadata Document: no database record to mark used."""
        return self.document.get("document_host") is not None

    @property
    def grant_types(self) -> frozenset[str]:
        value = self.document.get("grant_types")
        return frozenset(str(item) for item in value) if isinstance(value, list) else frozenset()


REAPED = "This client was deleted after a period of inactivity; register it again"


def basic_challenge(realm: str) -> dict[str, str]:
    """RFC 6749 §5.2: a client that tried the Authorization header gets a Basic challenge."""
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return {"WWW-Authenticate": f'Basic realm="{quoted}"'}


def invalid_client(description: str, *, realm: str | None) -> OAuthError:
    headers = basic_challenge(realm) if realm is not None else None
    return OAuthError("invalid_client", description, status=401, headers=headers)


def _basic_credentials(authorization: str, realm: str) -> tuple[str, str]:
    # RFC 6749 §2.3.1: client_id and secret are form-urlencoded (Appendix B) before they are
    # joined with ":" and base64-encoded (RFC 7617), so each half is decoded on its own.
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client("Only the Basic authentication scheme is supported", realm=realm)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        raw_id, separator, raw_secret = decoded.partition(":")
        if not separator:
            raise ValueError("no separator")
        return (
            unquote_plus(raw_id, errors="strict"),
            unquote_plus(raw_secret, errors="strict"),
        )
    except (binascii.Error, ValueError) as exc:
        raise invalid_client("Malformed Basic credentials", realm=realm) from exc


def presented_credentials(
    authorization: str | None, params: TokenRequest, realm: str
) -> PresentedCredentials:
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    assertion_type, assertion = params.get("client_assertion_type"), params.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        return _presented_assertion(authorization, body_id, body_secret, assertion_type, assertion)
    if authorization is not None:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        if body_secret is not None:
            raise OAuthError(
                "invalid_request",
                "Use either client_secret_basic or client_secret_post, not both",
            )
        client_id, secret = _basic_credentials(authorization, realm)
        if body_id is not None and body_id != client_id:
            raise OAuthError(
                "invalid_request", "client_id in the body differs from the Authorization header"
            )
        credentials = PresentedCredentials(client_id, secret, BASIC_METHOD)
    elif body_id is not None:
        method = POST_METHOD if body_secret is not None else NONE_METHOD
        credentials = PresentedCredentials(body_id, body_secret, method)
    else:
        raise invalid_client("Client authentication is required", realm=None)
    if not _VSCHARS.match(credentials.client_id):
        raise invalid_client(
            "Client authentication failed", realm=realm if credentials.used_basic else None
        )
    return credentials


def _presented_assertion(
    authorization: str | None,
    body_id: str | None,
    body_secret: str | None,
    assertion_type: str | None,
    assertion: str | None,
) -> PresentedCredentials:
    """RFC 7523 §2.2: a JWT assertion, and no other method alongside it (RFC 6749 §2.3)."""
    if authorization is not None or body_secret is not None:
        raise OAuthError(
            "invalid_request", "Use one client authentication method, not a secret and a JWT"
        )
    if assertion_type != JWT_BEARER:
        raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    if assertion is None:
        raise OAuthError("invalid_request", "Missing required parameter: client_assertion")
    client_id = assertion_client_id(assertion)
    if body_id is not None and body_id != client_id:
        raise OAuthError("invalid_request", "client_id differs from the client_assertion's iss")
    if not _VSCHARS.match(client_id):
        raise invalid_client("Client authentication failed", realm=None)
    return PresentedCredentials(client_id, None, JWT_METHOD, assertion)


async def authenticate_client(
    db: AsyncDatabase[Document],
    tenant_id: str,
    presented: PresentedCredentials,
    realm: str,
    by_document: Callable[[], Awaitable[AuthenticatedClient | None]] | None = None,
) -> AuthenticatedClient:
    """`by_document`: asked for a client the database does not know (metadata documents)."""
    challenge_realm = realm if presented.used_basic else None
    document = await db[Collections.CLIENTS].find_one(
        {"_id": presented.client_id, "tenant_id": tenant_id}
    )
    if document is None and by_document is not None:
        client = await by_document()
        if client is not None:
            return client
    if document is None:
        verify_secret(presented.client_secret or "", _UNKNOWN_CLIENT_HASH)
        raise invalid_client("Client authentication failed", realm=challenge_realm)
    if document.get("reaped_at") is not None:
        # The registration service removed this dynamically registered client for disuse;
        # its id is unguessable, so saying so reveals nothing and tells it what to do.
        raise invalid_client(REAPED, realm=challenge_realm)
    client = AuthenticatedClient(presented.client_id, presented.method, document)
    if client.is_public:
        if presented.client_secret is not None:
            raise invalid_client(
                "A public client (token_endpoint_auth_method none) must not present a secret",
                realm=challenge_realm,
            )
        return client
    if presented.client_secret is None or not verify_secret(
        presented.client_secret, document.get("client_secret_hash")
    ):
        raise invalid_client("Client authentication failed", realm=challenge_realm)
    registered = document.get("token_endpoint_auth_method")
    if document.get("dynamic") is True and presented.method != registered:
        # A dynamically registered client authenticates the way it registered (RFC 7591 §2);
        # tenants' own first-party clients may use either secret method, as in Auth0.
        raise invalid_client(
            f"This client registered token_endpoint_auth_method {registered}",
            realm=challenge_realm,
        )
    return client


async def mark_used(request: web.Request, client: AuthenticatedClient) -> None:
    """Record a successful use (the reaper reads `last_used_at`), only while the client is
    live; called after the grant, before its tokens are handed out.

    The reaper's tombstoning update requires `last_used_at` to be unset or old, and this one
    requires no tombstone: on MongoDB, whichever of the two lands second matches nothing, so
    no token reaches a client reaped meanwhile. (FerretDB does not apply conditional updates
    atomically: a narrow window remains there.)
    """
    if client.from_metadata_document:
        return  # no record, no reaper: its document is its registration
    if not await record_client_use(request.app[DB], request[TENANT].id, client.client_id):
        realm = request[ORIGIN].issuer if client.method == BASIC_METHOD else None
        raise invalid_client(REAPED, realm=realm)


async def document_client(
    request: web.Request, presented: PresentedCredentials, realm: str
) -> AuthenticatedClient | None:
    """The public client named by a Client ID Metadata Document (the cached document, else a
    fetch; draft-ietf-oauth-client-id-metadata-document-02): `none` only, no secret. None when
    `client_id` names none (not an https URL, or the tenant does not allow them). Raises
    OAuthError `invalid_client` with the reason when the document cannot be used."""
    challenge_realm = realm if presented.used_basic else None
    try:
        client = await metadata_document_client(request, presented.client_id)
    except MetadataDocumentError as exc:
        raise invalid_client(exc.detail, realm=challenge_realm) from None
    if client is None:
        return None
    if presented.client_secret is not None:
        raise invalid_client(
            "A public client (token_endpoint_auth_method none) must not present a secret",
            realm=challenge_realm,
        )
    document = {
        "_id": client.client_id,
        "tenant_id": client.tenant_id,
        "token_endpoint_auth_method": NONE_METHOD,
        "grant_types": sorted(client.grant_types),
        "document_host": client.document_host,
    }
    return AuthenticatedClient(client.client_id, presented.method, document)


async def authenticate_by_assertion(
    request: web.Request, presented: PresentedCredentials
) -> AuthenticatedClient:
    """A client that registered private_key_jwt, proven by its signed assertion."""
    document = await request.app[DB][Collections.CLIENTS].find_one(
        {"_id": presented.client_id, "tenant_id": request[TENANT].id}
    )
    if document is None or presented.assertion is None:
        raise invalid_client("Client authentication failed", realm=None)
    if document.get("reaped_at") is not None:
        raise invalid_client(REAPED, realm=None)
    registered = document.get("token_endpoint_auth_method")
    if registered != JWT_METHOD:
        raise invalid_client(
            f"This client registered token_endpoint_auth_method {registered}", realm=None
        )
    issuer = request[ORIGIN].issuer
    audiences = {issuer, f"{issuer}oauth/token", f"{issuer}{request.path.lstrip('/')}"}
    metadata = document.get("metadata") or {}
    jwks, jwks_uri = metadata.get("jwks"), metadata.get("jwks_uri")
    if jwks is None and isinstance(jwks_uri, str):
        kid = assertion_kid(presented.assertion)
        try:
            jwks = await request.app[CLIENT_JWKS].keys(presented.client_id, jwks_uri, kid)
        except JwksUnavailable as exc:
            raise invalid_client(str(exc), realm=None) from exc
    await verify_client_assertion(
        presented.assertion,
        presented.client_id,
        metadata,
        jwks,
        audiences,
        request.app[USED_ASSERTIONS],
    )
    return AuthenticatedClient(presented.client_id, JWT_METHOD, document)


async def authenticate(request: web.Request, params: TokenRequest) -> AuthenticatedClient:
    """The client of a token request, authenticated within the request's tenant."""
    realm = request[ORIGIN].issuer
    presented = presented_credentials(request.headers.get("Authorization"), params, realm)
    if presented.method == JWT_METHOD:
        return await authenticate_by_assertion(request, presented)

    async def by_document() -> AuthenticatedClient | None:
        return await document_client(request, presented, realm)

    return await authenticate_client(
        request.app[DB], request[TENANT].id, presented, realm, by_document
    )
