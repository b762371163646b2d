"""Redirect URI rules shared by client registration and the authorization endpoint.

Matching is exact string comparison (RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1, RFC 9700 §4.1.3):
no normalisation, no prefix matching, no wildcards. The one exception is RFC 8252 §7.3: a native
app's `http` loopback redirect URI matches whatever port the app picks at request time.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FORBIDDEN_SCHEMES", "LOOPBACK_HOSTS", "is_loopback", "redirect_uri_matches"]

# Schemes that run code or read local data in a user agent; never a redirect target.
FORBIDDEN_SCHEMES: frozenset[str] = frozenset(
    {"javascript", "data", "file", "vbscript", "blob", "about"}
)

# Compared with the URI's host, lowercase, IPv6 brackets stripped (RFC 8252 §7.3, §8.3).
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "::1", "localhost"})

_MAX_PORT = 65535


def _split_http(uri: str) -> tuple[str, str, str | None, str] | None:
    """Split an `http`/`https` URI into raw (scheme, host, port, rest); None if not one.

    `host` keeps the URI's spelling (brackets and case included), `port` is None when the
    authority has none, `rest` is everything from the path on. URIs with userinfo, or whose
    authority is not `host[:digits]` / `[v6]:digits`, give None: this parser is meant to be
    stricter than any user agent, never more lenient (urllib accepts `http://[::1]junk/`).
    """
    scheme, sep, remainder = uri.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    end = len(remainder)
    for delimiter in "/?#":
        index = remainder.find(delimiter)
        if index != -1:
            end = min(end, index)
    authority, rest = remainder[:end], remainder[end:]
    if "@" in authority:  # userinfo: RFC 3986 §3.2.1, never part of a redirect target
        return None
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return None
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            return None
        port: str | None = after[1:] if after else None
    else:
        host, colon, port_text = authority.partition(":")
        port = port_text if colon else None
    if not host or host == "[]":
        return None
    if (
        port is not None
        and port
        and (len(port) > 5 or not port.isascii() or not port.isdigit() or int(port) > _MAX_PORT)
    ):
        return None
    return scheme, host, port, rest


def _host_key(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.lower()


def is_loopback(uri: str) -> bool:
    """True when `uri` is an `http` or `https` URI whose host is in LOOPBACK_HOSTS.

    Only the host is looked at (the scheme merely has to be http/https): callers decide which
    scheme they accept on a loopback host. Unparseable input is not loopback.
    """
    parts = _split_http(uri)
    return parts is not None and _host_key(parts[1]) in LOOPBACK_HOSTS


def _loopback_key(uri: str) -> tuple[str, str, str] | None:
    """(scheme, host, rest) of an `http` loopback URI, with the port dropped; else None."""
    parts = _split_http(uri)
    if parts is None:
        return None
    scheme, host, _port, rest = parts
    if scheme.lower() != "http" or _host_key(host) not in LOOPBACK_HOSTS:
        return None
    return scheme, host, rest


def redirect_uri_matches(registered: Sequence[str], requested: str, application_type: str) -> bool:
    """Whether `requested` is one of the client's `registered` redirect URIs.

    Exact, case-sensitive string comparison. Only for `application_type == "native"` and an
    `http` loopback registered URI may the port differ (RFC 8252 §7.3); scheme, host spelling,
    path and query must still be identical.
    """
    if isinstance(registered, str):
        # A bare string is a Sequence[str] too; iterating it would compare single characters.
        raise TypeError("registered must be a sequence of URIs, not a string")
    if requested in registered:
        return True
    if application_type != "native":
        return False
    wanted = _loopback_key(requested)
    if wanted is None:
        return False
    return any(_loopback_key(candidate) == wanted for candidate in registered)
