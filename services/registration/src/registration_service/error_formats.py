"""This service's two error formats, each written once.

`POST /oidc/register` and RFC 7592 answer RFC 7591 §3.2.2 bodies (`OAuthError`); the tenant
owner's `/api/v2/clients` answers Auth0's Management API shape (`ManagementApiError`). For each
format: how an unreadable JSON body and refused client metadata are answered.
"""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web

from oidc_common.client_metadata import INVALID_CLIENT_METADATA, ClientMetadataError
from oidc_common.errors import ManagementApiError, OAuthError
from oidc_common.json_body import read_json_body

__all__ = [
    "management_bad_request",
    "management_metadata_error",
    "oauth_metadata_error",
    "read_management_json",
    "read_oauth_json",
]


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


def management_bad_request(message: str) -> ManagementApiError:
    """400 `invalid_body` saying `message`."""
    return ManagementApiError(400, message, "invalid_body")


def _management_body_error(status: int, message: str) -> NoReturn:
    raise management_bad_request(
        message if status == 400 else f"Request body must be JSON ({message})"
    )


async def read_management_json(request: web.Request) -> Any:
    """The parsed JSON body; otherwise a ManagementApiError 400 `invalid_body`."""
    return await read_json_body(request, _management_body_error)


def management_metadata_error(exc: ClientMetadataError) -> ManagementApiError:
    """400 `invalid_body`: "Payload validation error: " and the metadata rules' description."""
    return management_bad_request(f"Payload validation error: {exc.description}")
