"""Reading a JSON request body for the OAuth-style registration endpoints."""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.json_body import read_json_body

from .rfc7591.metadata import INVALID_CLIENT_METADATA


def _fail(status: int, message: str) -> NoReturn:
    raise OAuthError(INVALID_CLIENT_METADATA, message, status=status)


async def read_json(request: web.Request) -> Any:
    """The parsed body; 415/400 with an RFC 7591 error otherwise."""
    return await read_json_body(request, _fail)
