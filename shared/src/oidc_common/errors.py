"""The two error-body formats of the public contract and the middleware that enforces them.

OAuth/OIDC endpoints answer RFC 6749 / RFC 7591 style bodies; the Management API
(`/api/v2/...`) answers Auth0's shape. Any unexpected exception becomes a logged 500 in the
format of the endpoint, without internals.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

import orjson
import redis.exceptions
from aiohttp import web, web_protocol
from pymongo.errors import ConnectionFailure

log = logging.getLogger(__name__)

MANAGEMENT_PREFIX = "/api/v2/"
BACKING_OUTAGES = (
    ConnectionFailure,  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Retry-After (seconds) of a 503 for an outage expected to be short: a backing service
# reconnecting, a setting that cannot be read right now.
RETRY_AFTER_OUTAGE = "5"


def is_management_path(path: str) -> bool:
    return path.startswith(MANAGEMENT_PREFIX) or path == MANAGEMENT_PREFIX.rstrip("/")


def json_bytes(body: object) -> bytes:
    """`body` as compact JSON. orjson, except for what it cannot write: a string holding an
    unpaired surrogate (an error description quoting what the client sent) is escaped by
    the standard library, as RFC 8259 §7 allows."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode()


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json_bytes(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class HttpError(Exception):
    """An error that is its own HTTP answer (status, extra headers, a body in one format)."""

    def __init__(self, summary: str, status: int, headers: Mapping[str, str] | None) -> None:
        super().__init__(summary)
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        raise NotImplementedError


class OAuthError(HttpError):
    """An RFC 6749 §5.2 / RFC 7591 §3.2.2 error answer."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}", status, headers)
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        return oauth_error_response(self.status, self.error, self.description, self.headers)


class ManagementApiError(HttpError):
    """An Auth0-shaped Management API error answer."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status, headers)
        self.message = message
        self.error_code = error_code

    def response(self) -> web.Response:
        return management_error_response(self.status, self.message, self.error_code, self.headers)


def oauth_error_response(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={**NO_STORE, **(headers or {})},
    )


def management_error_response(
    status: int, message: str, error_code: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_response(
        {
            "statusCode": status,
            "error": HTTPStatus(status).phrase,
            "message": message,
            "errorCode": error_code,
        },
        status=status,
        headers=headers,
    )


# Codes for aiohttp's own HTTP exceptions (no route, wrong method, body too large, ...).
_OAUTH_CODES = {
    400: "invalid_request",
    401: "invalid_token",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "invalid_request",
    415: "invalid_request",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}


def error_for_path(
    path: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error in the format the endpoint at `path` documents."""
    if is_management_path(path):
        code = HTTPStatus(status).phrase.lower().replace(" ", "_")
        return management_error_response(status, message, code, headers)
    error = _OAUTH_CODES.get(status, "server_error" if status >= 500 else "invalid_request")
    return oauth_error_response(status, error, message, headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        message = HTTPStatus(exc.status).phrase if exc.status != 404 else "Not Found"
        if exc.status == 413:
            message = "Request body too large"
        return error_for_path(request.path, exc.status, message, headers)
    except ConnectionResetError:
        # The client went away mid-request: nobody will read an answer; not our error.
        log.info("client disconnected", extra={"path": request.path})
        return error_for_path(request.path, 400, "Connection lost")
    except web_protocol.RequestPayloadError:
        # The body could not be read (bad Content-Encoding, truncated chunking): client error.
        return error_for_path(request.path, 400, "The request body could not be decoded")
    except BACKING_OUTAGES as exc:
        # A database or cache is unreachable: say so honestly and invite a retry.
        log.warning("backing service unavailable", extra={"path": request.path, "error": str(exc)})
        return error_for_path(
            request.path,
            503,
            "A backing service is unavailable, retry later",
            {"Retry-After": RETRY_AFTER_OUTAGE},
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_for_path(request.path, 500, "The server encountered an unexpected error")
