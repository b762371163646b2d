"""What the public gateway does, whatever it runs on: its routes and their error formats,
limits, timeouts, retry rule, access log and TLS profile. `gateway.py` renders these for
every target; nothing else states them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SERVICES = ("registration", "authorize", "tenant-settings")
# The services' own body limit (oidc_common.service.DEFAULT_MAX_BODY), enforced at the edge
# from the headers already. Every accepted body also fits the in-memory buffer, so nginx never
# writes one to a temporary file (which unprivileged workers may be unable to write).
MAX_BODY = "64k"
# The services' request-id rule (oidc_common.logs): a caller's id is kept only if the service
# would keep it too, so both log the same id.
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"


@dataclass(frozen=True)
class Route:
    """One public path: `match` is nginx's `=` (exact) or `^~` (prefix, beats regexes)."""

    match: str
    path: str
    service: str
    errors: str  # the endpoint's error format: "oauth" (RFC 6749/7591) or "management" (Auth0)


ROUTES: tuple[Route, ...] = (
    # registration: RFC 7591 and RFC 7592, and the tenant owner's view of clients
    Route("=", "/oidc/register", "registration", "oauth"),
    Route("^~", "/oidc/register/", "registration", "oauth"),
    Route("=", "/api/v2/clients", "registration", "management"),
    Route("^~", "/api/v2/clients/", "registration", "management"),
    # tenant-settings
    Route("=", "/api/v2/tenants/settings", "tenant-settings", "management"),
    # authorize: sign-in, tokens, discovery, users and APIs
    Route("=", "/api/v2/users", "authorize", "management"),
    Route("^~", "/api/v2/users/", "authorize", "management"),
    Route("=", "/api/v2/resource-servers", "authorize", "management"),
    Route("^~", "/api/v2/resource-servers/", "authorize", "management"),
    Route("=", "/api/v2/grants", "authorize", "management"),
    Route("^~", "/api/v2/grants/", "authorize", "management"),
    Route("=", "/authorize", "authorize", "oauth"),
    Route("=", "/oidc/logout", "authorize", "oauth"),
    Route("=", "/v2/logout", "authorize", "oauth"),
    Route("^~", "/u/", "authorize", "oauth"),
    Route("=", "/oauth/token", "authorize", "oauth"),
    Route("=", "/oauth/revoke", "authorize", "oauth"),
    Route("=", "/oauth/introspect", "authorize", "oauth"),
    Route("=", "/userinfo", "authorize", "oauth"),
    Route("^~", "/.well-known/", "authorize", "oauth"),
)

# Answers nginx itself gives, in each endpoint's own format (DESIGN.md "Error bodies").
# 502: no replica could be reached; 504: one was reached but did not answer in time.
ERROR_BODIES: Mapping[str, Mapping[int, dict[str, object]]] = {
    "oauth": {
        405: {"error": "invalid_request", "error_description": "Method not allowed"},
        413: {"error": "invalid_request", "error_description": "Request body too large"},
        415: {
            "error": "invalid_request",
            "error_description": "Content-Encoding is not supported: send the body uncompressed",
        },
        502: {
            "error": "temporarily_unavailable",
            "error_description": "The service is unreachable, retry later",
        },
        504: {
            "error": "temporarily_unavailable",
            "error_description": "The service did not answer in time, retry later",
        },
        501: {"error": "invalid_request", "error_description": "Not implemented"},
        505: {"error": "invalid_request", "error_description": "HTTP version not supported"},
    },
    "management": {
        405: {
            "statusCode": 405,
            "error": "Method Not Allowed",
            "message": "Method not allowed",
            "errorCode": "method_not_allowed",
        },
        501: {
            "statusCode": 501,
            "error": "Not Implemented",
            "message": "Not implemented",
            "errorCode": "not_implemented",
        },
        505: {
            "statusCode": 505,
            "error": "HTTP Version Not Supported",
            "message": "HTTP version not supported",
            "errorCode": "http_version_not_supported",
        },
        413: {
            "statusCode": 413,
            "error": "Request Entity Too Large",
            "message": "Request body too large",
            "errorCode": "request_entity_too_large",
        },
        415: {
            "statusCode": 415,
            "error": "Unsupported Media Type",
            "message": "Content-Encoding is not supported: send the body uncompressed",
            "errorCode": "unsupported_media_type",
        },
        502: {
            "statusCode": 502,
            "error": "Bad Gateway",
            "message": "The service is unreachable, retry later",
            "errorCode": "service_unreachable",
        },
        504: {
            "statusCode": 504,
            "error": "Gateway Timeout",
            "message": "The service did not answer in time, retry later",
            "errorCode": "service_timeout",
        },
    },
}
NOT_FOUND = {"error": "not_found", "error_description": "No such endpoint"}
# nginx's own codes answered as another status with that status's body (none yet). 400, 414
# and 494 (an unreadable request line, a URI or header too large) are left to nginx: such a
# request cannot be redirected to a named location (nginx answers 500 then).
ERROR_ALIASES: Mapping[int, int] = {}
# Headers on every answer the gateway writes itself (its error bodies and 404): never cached
# (DESIGN.md "Error bodies"), and the 415 says which coding a body may have (RFC 9110 §12.5.3).
OWN_ANSWER_HEADERS: Mapping[str, str] = {"Cache-Control": "no-store"}
STATUS_HEADERS: Mapping[int, Mapping[str, str]] = {415: {"Accept-Encoding": "identity"}}
# No endpoint takes a compressed body: a request Content-Encoding other than identity is
# refused with 415 before it reaches a service (whose parser a body that fails to decode
# would otherwise break, with the next request on that kept-alive connection).
ACCEPTED_CONTENT_CODINGS = ("identity",)

# Client side: slow clients are cut off instead of holding a connection.
CLIENT_TIMEOUTS = {
    "client_header_timeout": "10s",
    "client_body_timeout": "10s",
    "send_timeout": "10s",
    "keepalive_timeout": "65s",
}
# Service side: connecting is local and fast (a refused or silent replica is skipped quickly);
# the longest legitimate answer is a sign-in fetching a Client ID Metadata Document (5 s) or
# hashing a password, well under the read timeout.
UPSTREAM_TIMEOUTS = {
    "proxy_connect_timeout": "2s",
    "proxy_send_timeout": "10s",
    "proxy_read_timeout": "30s",
}
# Retry on another replica only when the request could not have been processed twice: nginx
# never passes a POST or PATCH on once it was sent (no `non_idempotent` here), so a retried
# registration is one whose connection was refused or never accepted. Bounded in count and time.
RETRY = {
    "proxy_next_upstream": "error timeout",
    "proxy_next_upstream_tries": "3",
    "proxy_next_upstream_timeout": "10s",
}

# One JSON object per request. Paths only, never query strings (they carry state, nonces,
# login hints) nor any header that may hold a credential.
ACCESS_LOG_FIELDS = (
    # (name, variable, is a number: written without quotes)
    ("time", "$time_iso8601", False),
    ("request_id", "$gateway_request_id", False),
    ("remote_addr", "$remote_addr", False),
    ("host", "$host", False),
    ("method", "$request_method", False),
    ("path", "$uri", False),
    ("status", "$status", True),
    ("bytes_sent", "$bytes_sent", True),
    ("request_length", "$request_length", True),
    ("request_time", "$request_time", True),
    # Strings: "-" without an upstream, "a, b" after a retry.
    ("upstream_addr", "$upstream_addr", False),
    ("upstream_status", "$upstream_status", False),
    ("upstream_response_time", "$upstream_response_time", False),
    ("user_agent", "$http_user_agent", False),
)

# Mozilla's "intermediate" TLS profile (TLS 1.2 and 1.3, forward-secret AEAD ciphers only).
TLS_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
HSTS_MAX_AGE = 63072000  # two years, as the HSTS preload list asks
