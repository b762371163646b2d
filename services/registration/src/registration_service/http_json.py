"""Reading a JSON request body for the OAuth-style registration endpoints."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from oidc_common.errors import OAuthError

from .rfc7591.metadata import INVALID_CLIENT_METADATA


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: web.Request) -> tuple[Any, bytes]:
    """The parsed body and its raw bytes; 415/400 with an RFC 7591 error otherwise."""
    if request.content_type != "application/json":
        raise OAuthError(
            INVALID_CLIENT_METADATA,
            "Content-Type must be application/json",
            status=415,
        )
    raw = await request.read()
    if not raw.strip():
        raise OAuthError(INVALID_CLIENT_METADATA, "Request body is empty")
    try:
        return json.loads(raw, parse_constant=_reject_constant), raw
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise OAuthError(INVALID_CLIENT_METADATA, "Request body is not valid JSON") from exc
