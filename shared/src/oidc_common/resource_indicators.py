"""RFC 8707 resource indicators: what a `resource` value may be, and which URLs a tenant's
allowed prefixes let act as a resource without being registered as an API.

A resource is an absolute URI without a fragment (RFC 8707 §2). An allowed prefix is an
`https` URL (or `http` on a loopback host, for local servers) without query or fragment; a
resource is under it when scheme, host and port are the same and its path continues the
prefix's path at a segment boundary, so `https://mcp.example.com/a` covers
`https://mcp.example.com/a/b` but neither `.../ab` nor `https://mcp.example.com.evil/a`.

Nothing on the tenant's own origin is ever a prefix resource (`on_tenant_origin`): that is
where its system APIs live (the Management API at `<issuer>api/v2/`, `/userinfo`), and a user's
token must never carry their audience (RFC 9700 §2.3). Prefix resources carry no Management
API permission name as a scope either (`PREFIX_FORBIDDEN_SCOPES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote

from .errors import OAuthError
from .management_api import MANAGEMENT_SCOPES
from .redirect_uris import is_loopback_host
from .uris import ParsedUri, UriError, parse_uri

__all__ = [
    "MAX_RESOURCE_LENGTH",
    "PREFIX_FORBIDDEN_SCOPES",
    "check_resource_prefix",
    "on_tenant_origin",
    "parse_resource",
    "single_resource",
    "under_prefix",
]

MAX_RESOURCE_LENGTH: Final = 2000
# Scopes a prefix resource never grants: the Management API's permission names, so that no
# token for an unregistered URL reads like a Management API token to anything.
PREFIX_FORBIDDEN_SCOPES: Final = frozenset(MANAGEMENT_SCOPES)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def parse_resource(value: str) -> ParsedUri:
    """`value` as a resource indicator; raises OAuthError `invalid_target` (RFC 8707 §2)."""
    try:
        parsed = parse_uri(value, MAX_RESOURCE_LENGTH)
    except UriError as exc:
        raise OAuthError("invalid_target", f"resource {exc}") from exc
    if "#" in value:
        raise OAuthError("invalid_target", "resource must not include a fragment")
    if _has_dot_segment(parsed.path):
        # RFC 3986 §5.2.4: `a/../b` is `b` to whoever normalises it; it would escape a prefix.
        raise OAuthError("invalid_target", "resource must not include dot segments")
    return parsed


def _has_dot_segment(path: str) -> bool:
    return any(unquote(segment) in (".", "..") for segment in path.split("/"))


def single_resource(values: Iterable[str]) -> str | None:
    """The one resource a request names (repeats of the same value are one); this server
    issues tokens for a single audience, so two different values are `invalid_target`."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise OAuthError("invalid_target", "Only one resource per request is supported")
    return distinct[0] if distinct else None


def check_resource_prefix(value: str) -> str:
    """An allowed prefix as the tenant's policy stores it; raises ValueError saying why."""
    try:
        parsed = parse_uri(value, MAX_RESOURCE_LENGTH)
    except UriError as exc:
        raise ValueError(str(exc)) from exc
    if _has_dot_segment(parsed.path):
        raise ValueError("must not include dot segments")
    if parsed.scheme not in ("https", "http") or parsed.host is None:
        raise ValueError("must be an https URL")
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        raise ValueError("http is only allowed on a loopback host")
    if "?" in value or "#" in value:
        raise ValueError("must not include a query or a fragment")
    return value


def under_prefix(resource: ParsedUri, prefix: str) -> bool:
    """Whether `resource` is `prefix` or below it (see the module docstring)."""
    allowed = parse_uri(prefix)
    if "?" in resource.uri or (resource.scheme, resource.host, resource.port) != (
        allowed.scheme,
        allowed.host,
        allowed.port,
    ):
        return False
    base = allowed.path.rstrip("/")
    return resource.path == allowed.path or resource.path.startswith(base + "/")


def _effective_port(uri: ParsedUri) -> int | None:
    return uri.port if uri.port is not None else _DEFAULT_PORTS.get(uri.scheme)


def on_tenant_origin(resource: ParsedUri, issuer: str) -> bool:
    """Whether `resource` is served by the tenant's own origin (`issuer`'s host, any scheme
    or port, a trailing dot ignored). On a loopback issuer, where each port is another local
    server (an MCP server beside a local run), it is every loopback name on the issuer's port:
    `localhost`, `127.0.0.1` and `[::1]` reach the same gateway."""
    own = parse_uri(issuer)
    if resource.host is None or own.host is None:
        return False
    if is_loopback_host(own.host):
        return is_loopback_host(resource.host) and _effective_port(resource) == _effective_port(own)
    return resource.host.rstrip(".") == own.host.rstrip(".")
