"""RFC 8707 resource indicators: what a `resource` value may be, and which URLs a tenant's
allowed prefixes let act as a resource without being registered as an API.

A resource is an absolute URI without a fragment (RFC 8707 §2). An allowed prefix is an
`https` URL (or `http` on a loopback host, for local servers) without query or fragment; a
resource is under it when scheme, host and port are the same and its path continues the
prefix's path at a segment boundary, so `https://mcp.example.com/a` covers
`https://mcp.example.com/a/b` but neither `.../ab` nor `https://mcp.example.com.evil/a`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .errors import OAuthError
from .redirect_uris import is_loopback_host
from .uris import ParsedUri, UriError, parse_uri

__all__ = [
    "MAX_RESOURCE_LENGTH",
    "check_resource_prefix",
    "parse_resource",
    "single_resource",
    "under_prefix",
]

MAX_RESOURCE_LENGTH: Final = 2000


def parse_resource(value: str) -> ParsedUri:
    """`value` as a resource indicator; raises OAuthError `invalid_target` (RFC 8707 §2)."""
    try:
        parsed = parse_uri(value, MAX_RESOURCE_LENGTH)
    except UriError as exc:
        raise OAuthError("invalid_target", f"resource {exc}") from exc
    if "#" in value:
        raise OAuthError("invalid_target", "resource must not include a fragment")
    return parsed


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
