"""This service's two error formats, each written once.

`POST /oidc/register` and RFC 7592 answer RFC 7591 §3.2.2 bodies (`OAuthError`): how an
unreadable JSON body and refused client metadata are answered. The tenant owner's
`/api/v2/clients` answers Auth0's Management API shape (`ManagementApiError`), as the other
Management APIs do (`oidc_common.management_requests`); refused client metadata is answered
here.
"""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web

from oidc_common.client_metadata import INVALID_CLIENT_METADATA, ClientMetadataError
from oidc_common.errors import ManagementApiError, OAuthError
from oidc_common.json_body import read_json_body
from oidc_common.management_requests import invalid_body

__all__ = ["management_metadata_error", "oauth_metadata_error", "read_oauth_json"]


# ----------------------------------------------------------------- RFC 7591 §3.2.2 format


def _oauth_body_error(status: int, message: str) -> NoReturn:
    raise OAuthError(INVALID_CLIENT_METADATA, message, status=status)


async def read_oauth_json(request: web.Request) -> Any:
    """The parsed JSON body; otherwise an OAuthError 415 or 400 `invalid_client_metadata`."""
    return await read_json_body(request, _oauth_body_error)


def oauth_metadata_error(exc: ClientMetadataError) -> OAuthError:
    """400 with the RFC 7591 §3.2.2 code and description the metadata rules gave."""
    return OAuthError(exc.error, exc.description)


# ------------------------------------------------------------------ Management API format
# (bodies, queries and the other answers: `oidc_common.management_requests`)


def management_metadata_error(exc: ClientMetadataError) -> ManagementApiError:
    """400 `invalid_body`: "Payload validation error: " and the metadata rules' description."""
    return invalid_body(f"Payload validation error: {exc.description}")
