"""Redirect URIs: the rules for registering one, and matching one at `/authorize`.

Registration (`check_redirect_uri`; RFC 6749 §3.1.2, RFC 8252 §7, OpenID Connect DCR 1.0 §2):
an absolute URI (`oidc_common.uris`) without a fragment and without a scheme that runs code in a
user agent; `http` only on a loopback host; web clients using the implicit grant only `https`
and never a host on the user's own machine; other (private-use) schemes only for native apps.

Matching (`redirect_uri_matches`; RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1, RFC 9700 §4.1.3) is
exact string comparison: no normalisation, no prefix matching, no wildcards. The one exception
is RFC 8252 §7.3: a native app's `http` loopback redirect URI matches whatever port the app
picks at request time.

Loopback, one definition for every rule here (`is_loopback_host`): `localhost` (and
`localhost.`), any dotted-decimal IPv4 address in 127.0.0.0/8, `::1`, and the IPv4-mapped IPv6
forms of 127.0.0.0/8 (`::ffff:127.0.0.1`). RFC 8252 §7.3 names 127.0.0.1 and [::1], §8.3
permits (and discourages) `localhost`; RFC 6890 makes all of 127.0.0.0/8 loopback, and a
narrower predicate used in a refusal would let 127.0.0.2 through. `*.localhost` names are not
loopback: RFC 6761 §6.3 only lets resolvers answer them with loopback, and many native
platforms resolve them as ordinary host names. Browsers do send them (and the unspecified
address 0.0.0.0) to this machine, so the implicit-web refusal adds those two on top.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from .uris import ParsedUri, UriError, parse_uri

__all__ = [
    "FORBIDDEN_SCHEMES",
    "InvalidRedirectUri",
    "check_redirect_uri",
    "is_loopback",
    "is_loopback_host",
    "redirect_uri_matches",
]

# Schemes that run code or read local data in a user agent; never a redirect target.
FORBIDDEN_SCHEMES: Final[frozenset[str]] = frozenset(
    {"javascript", "data", "file", "vbscript", "blob", "about"}
)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost."})
_WEB_SCHEMES: Final = ("http", "https")


class InvalidRedirectUri(ValueError):
    """A redirect URI refused at registration; the message says why (RFC 7591 §3.2.2
    `invalid_redirect_uri`)."""


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a URI's host, any case, IPv6 brackets optional) is loopback, as defined
    in the module docstring (RFC 8252 §7.3, §8.3; RFC 6890)."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.lower()
    if host in _LOOPBACK_NAMES:
        return True
    address = _ip_address(host)
    return address is not None and address.is_loopback


def _reaches_this_machine(host: str) -> bool:
    """Loopback, or a host a browser also sends to the user's own machine: `*.localhost`
    names (RFC 6761 §6.3) and the unspecified address (0.0.0.0, ::)."""
    if is_loopback_host(host) or host.rstrip(".").endswith(".localhost"):
        return True
    address = _ip_address(host)
    return address is not None and address.is_unspecified


def _parse(uri: str) -> ParsedUri | None:
    try:
        return parse_uri(uri)
    except UriError:
        return None


def is_loopback(uri: str) -> bool:
    """True when `uri` is an `http` or `https` URI whose host is loopback (`is_loopback_host`).

    Only the host is looked at (the scheme merely has to be http/https): callers decide which
    scheme they accept on a loopback host. Unparseable input is not loopback.
    """
    parsed = _parse(uri)
    return (
        parsed is not None
        and parsed.scheme in _WEB_SCHEMES
        and parsed.host is not None
        and is_loopback_host(parsed.host)
    )


def check_redirect_uri(
    uri: str, application_type: str, *, implicit: bool, max_length: int | None = None
) -> str | None:
    """Apply the registration rules to one redirect URI of a client with `application_type`
    (`web` or `native`) that does (`implicit`) or does not use the implicit grant.

    Returns the URI's host (lowercase, no brackets) for an http(s) URI, None for a private-use
    scheme. Raises InvalidRedirectUri saying why the URI is refused.
    """
    try:
        parsed = parse_uri(uri, max_length)
    except UriError as exc:
        raise InvalidRedirectUri(str(exc)) from None
    if "#" in uri:
        raise InvalidRedirectUri("fragment not allowed")  # RFC 6749 §3.1.2
    if parsed.scheme in FORBIDDEN_SCHEMES:
        raise InvalidRedirectUri(f"scheme {parsed.scheme!r} is not allowed")
    if parsed.scheme in _WEB_SCHEMES:
        return _check_web_uri(parsed, application_type, implicit)
    if application_type != "native":
        raise InvalidRedirectUri(f"scheme {parsed.scheme!r} is only allowed for native clients")
    # RFC 8252 §7.1 private-use URI scheme, e.g. com.example.app:/oauth2redirect
    if not parsed.authority and not parsed.path:
        raise InvalidRedirectUri("private-use scheme URI needs a path after the scheme")
    return None


def _check_web_uri(parsed: ParsedUri, application_type: str, implicit: bool) -> str:
    host = parsed.host
    if host is None:
        raise InvalidRedirectUri("must include a host")
    if application_type == "web" and implicit:
        # OIDC DCR §2 application_type: implicit web clients use https, never localhost.
        if parsed.scheme != "https":
            raise InvalidRedirectUri("web clients using the implicit grant must use https")
        if _reaches_this_machine(host):
            raise InvalidRedirectUri(
                "web clients using the implicit grant must not use a loopback host"
            )
    if parsed.scheme == "http" and not is_loopback_host(host):
        # RFC 8252 §7.3 (native) and OIDC DCR §2 (web): plain http only on loopback.
        raise InvalidRedirectUri(
            "http is only allowed on a loopback host (127.0.0.1, [::1], localhost)"
        )
    return host


def _any_port_key(uri: str) -> tuple[str, str, str] | None:
    """(scheme, host, rest) as written of an `http` loopback URI without a fragment: what must
    still be identical when the port may differ. None for any other URI."""
    parsed = _parse(uri)
    if parsed is None or parsed.scheme != "http" or parsed.raw_host is None or "#" in uri:
        return None
    if parsed.host is None or not is_loopback_host(parsed.host):
        return None
    return uri[: len(parsed.scheme)], parsed.raw_host, parsed.rest


def redirect_uri_matches(registered: Sequence[str], requested: str, application_type: str) -> bool:
    """Whether `requested` is one of the client's `registered` redirect URIs.

    Exact, case-sensitive string comparison. Only for `application_type == "native"` and an
    `http` URI on a loopback host may the port differ (RFC 8252 §7.3); scheme, host spelling,
    path and query must still be identical. Never raises for any string input; a bare string
    as `registered` is a TypeError (it would compare single characters).
    """
    if isinstance(registered, str):
        raise TypeError("registered must be a sequence of URIs, not a string")
    if requested in registered:
        return True
    if application_type != "native":
        return False
    wanted = _any_port_key(requested)
    if wanted is None:
        return False
    return any(_any_port_key(candidate) == wanted for candidate in registered)
