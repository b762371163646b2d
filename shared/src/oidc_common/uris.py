"""Strict parsing of absolute URIs (RFC 3986) for values a client sends us.

`urllib.parse.urlsplit` does the split; everything it is lenient about is checked again here,
so that what we accept is never read differently by a user agent: only ASCII URI characters
(RFC 3986 §2), well-formed percent-encoding (§2.1), no userinfo (§3.2.1), brackets only around
an IPv6 literal (§3.2.2), IPv6 literals without zone identifiers, host names of ASCII labels,
numeric hosts only as dotted-decimal IPv4, and a decimal port in range (§3.2.3).

The `rfc3986` package was considered and not used: it would do the split and the port range,
but accepts what these checks exist to refuse (`0x7f.1` and `2130706433` as hosts, zone
identifiers, percent-encoded host names, malformed percent-encoding in the path), has no type
hints, and was last released in 2022.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from .text import UNSAFE_TEXT

__all__ = ["ParsedUri", "UriError", "parse_authority", "parse_uri"]

# Characters allowed anywhere in a URI: unreserved, reserved and "%" (RFC 3986 §2).
_NON_URI_CHAR: Final = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+")
_MAX_HOST: Final = 253
_MAX_PORT: Final = 65535


class UriError(ValueError):
    """A URI refused by `parse_uri`; the message says why, for an error description."""


@dataclass(frozen=True)
class ParsedUri:
    """An absolute URI that passed `parse_uri`.

    `scheme` and `host` are lowercase (`host` without IPv6 brackets) for rules to test;
    `raw_host` and `rest` keep the client's spelling for exact comparison.
    """

    uri: str
    scheme: str
    authority: str  # "" when the URI has none (`myapp:/cb`, `myapp:///cb`)
    host: str | None  # None without an authority
    raw_host: str | None
    port: int | None
    path: str
    rest: str  # everything after the authority (or after `scheme:`), as written


def parse_authority(authority: str) -> tuple[str, str, int | None]:
    """Split `host[:port]` strictly: (host lowercase without brackets, host as written, port).

    urllib is lenient here (`http://[::1]junk/` parses as host ::1), so the authority is parsed
    again by hand. Userinfo must have been refused already. Raises UriError.
    """
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise UriError("malformed IPv6 host")
        raw, after = authority[: close + 1], authority[close + 1 :]
        host = raw[1:-1].lower()
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UriError("host is not a valid IPv6 address") from None
        if "%" in host:
            raise UriError("IPv6 zone identifiers are not allowed")
    else:
        raw, colon, port_text = authority.partition(":")
        after = colon + port_text
        host = raw.lower()
        _check_host_name(host)
    return host, raw, _port(after)


def _check_host_name(host: str) -> None:
    if not host:
        raise UriError("must include a host")
    if len(host) > _MAX_HOST or not _HOST_NAME.fullmatch(host):
        raise UriError("host is not a valid host name")
    # A numeric last label makes user agents parse the host as IPv4 (WHATWG URL), so
    # "2130706433" or "0x7f.1" would mean 127.0.0.1: only dotted-decimal is accepted.
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UriError("host is not a valid IPv4 address") from None


def _port(after: str) -> int | None:
    """The port of the text following the host (`""` or `":digits"`)."""
    if not after:
        return None
    if not after.startswith(":"):
        raise UriError("malformed host")
    port = after[1:]
    if not (port.isascii() and port.isdigit()):
        raise UriError("port must be a decimal number")
    if len(port) > 5 or not 0 < int(port) <= _MAX_PORT:
        raise UriError("port out of range")
    return int(port)


def _check_characters(value: str) -> None:
    bad = _NON_URI_CHAR.search(value)
    if bad:
        char = bad.group()
        if char.isspace() or UNSAFE_TEXT.fullmatch(char):
            raise UriError("must not contain whitespace or control characters")
        if not char.isascii():
            raise UriError("must be ASCII; percent-encode other characters")
        raise UriError(f"character {char!r} is not allowed in a URI")
    if _BAD_PERCENT.search(value):
        raise UriError("malformed percent-encoding")


def parse_uri(value: str, max_length: int | None = None) -> ParsedUri:
    """Parse `value` as an absolute URI (RFC 3986 §4.3) under the checks in the module
    docstring; a fragment is allowed here (callers decide). Raises UriError."""
    if not value:
        raise UriError("must not be empty")
    if max_length is not None and len(value) > max_length:
        raise UriError(f"must be at most {max_length} characters")
    _check_characters(value)
    try:
        parts = urlsplit(value)
    except ValueError:
        raise UriError("is not a valid URI") from None
    if not parts.scheme:
        raise UriError("must be an absolute URI with a scheme")
    if "@" in parts.netloc:
        raise UriError("userinfo (user:password@) not allowed")
    if any(bracket in parts.path + parts.query for bracket in "[]"):
        raise UriError("'[' and ']' are only allowed around an IPv6 host")
    host = raw_host = None
    port = None
    after_scheme = len(parts.scheme) + 1
    rest = value[after_scheme:]
    if parts.netloc:  # empty authority (`myapp:///cb`) has no host to check
        host, raw_host, port = parse_authority(parts.netloc)
        rest = value[after_scheme + 2 + len(parts.netloc) :]
    return ParsedUri(value, parts.scheme, parts.netloc, host, raw_host, port, parts.path, rest)
