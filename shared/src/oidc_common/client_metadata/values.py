"""Checks of single client metadata values: text, string lists, URLs, scope, contacts, JWKs,
integers. Each returns the value to register (normalised, never aliasing the input) or raises
ClientMetadataError naming `where` (the member, or the element of it, at fault).
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..redirect_uris import is_loopback_host
from ..text import UNSAFE_TEXT, is_email_address
from ..uris import UriError, parse_uri
from .errors import INVALID_CLIENT_METADATA, fail

MAX_SCOPE: Final = 1000
MAX_CONTACTS: Final = 10
MAX_CONTACT: Final = 320
MAX_JWKS_KEYS: Final = 10
MAX_JWK_MEMBER: Final = 16384
MAX_JWK_MEMBER_NAME: Final = 64

# JWK members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def show(value: str, limit: int = 40) -> str:
    """A short quoted rendering of client input for error descriptions."""
    return repr(value[:limit] + "..." if len(value) > limit else value)


def listing(values: frozenset[str]) -> str:
    """`values` sorted and comma-separated, for error descriptions."""
    return ", ".join(sorted(values)) or "(none)"


def dedupe(items: list[str]) -> list[str]:
    """`items` without repeats, first occurrences kept in order."""
    return list(dict.fromkeys(items))


def text(value: object, where: str, field: str, max_len: int) -> str:
    """A non-blank string of at most `max_len` characters that passes the text rule
    (`oidc_common.text.UNSAFE_TEXT`: no control, format or invisible characters)."""
    if not isinstance(value, str):
        fail(where, "must be a string", field)
    if not value.strip():
        fail(where, "must not be empty", field)
    if len(value) > max_len:
        fail(where, f"must be at most {max_len} characters", field)
    if UNSAFE_TEXT.search(value):
        fail(where, "must not contain control, format or invisible characters", field)
    return value


def string_list(value: object, field: str, error: str = INVALID_CLIENT_METADATA) -> list[str]:
    """A JSON array of strings (possibly empty), copied."""
    if not isinstance(value, list):
        fail(field, "must be an array of strings", field, error)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            fail(f"{field}[{index}]", "must be a string", field, error)
    return list(value)


def logout_url(value: object, field: str, max_length: int) -> str:
    """An absolute https URL, or http on a loopback host, without a fragment (the logout
    URIs: Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0 §2)."""
    if not isinstance(value, str):
        fail(field, "must be a string", field)
    try:
        parsed = parse_uri(value, max_length)
    except UriError as exc:
        fail(field, str(exc), field)
    if "#" in value:
        fail(field, "fragment not allowed", field)
    if parsed.host is None or parsed.scheme not in ("https", "http"):
        fail(field, "must be an https URL", field)
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        fail(field, "must be an https URL (http only on a loopback host)", field)
    return value


def origin_of(uri: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of a URI that passed `parse_uri`; the port as written."""
    parsed = parse_uri(uri)
    return parsed.scheme, parsed.host, parsed.port


def https_url(value: object, where: str, field: str, max_length: int) -> tuple[str, str]:
    """An https URL with a host and no fragment (client_uri, logo_uri, policy_uri, tos_uri,
    jwks_uri); returns it and its host, lowercase."""
    if not isinstance(value, str):
        fail(where, "must be a string", field)
    try:
        parsed = parse_uri(value, max_length)
    except UriError as exc:
        fail(where, str(exc), field)
    if "#" in value:
        fail(where, "fragment not allowed", field)
    if parsed.scheme != "https":
        fail(where, "must be an https URL", field)
    if parsed.host is None:
        fail(where, "must include a host", field)
    return value, parsed.host


def scope(value: object, supported: frozenset[str] | None) -> str:
    """Space-separated scope tokens (RFC 6749 §3.3), deduplicated, single spaces; each one in
    `supported` unless that is None."""
    field = "scope"
    if not isinstance(value, str):
        fail(field, "must be a string of space-separated scope values", field)
    if len(value) > MAX_SCOPE:
        fail(field, f"must be at most {MAX_SCOPE} characters", field)
    tokens = dedupe([token for token in value.split(" ") if token])
    if not tokens:
        fail(field, "must contain at least one scope value", field)
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            fail(field, f"invalid scope value {show(token)} (RFC 6749 §3.3)", field)
    if supported is not None:
        unsupported = [token for token in tokens if token not in supported]
        if unsupported:
            fail(field, f"unsupported scope value {show(unsupported[0])}", field)
    return " ".join(tokens)


def contacts(value: object) -> list[str]:
    """At most MAX_CONTACTS email addresses (`oidc_common.text`), deduplicated."""
    field = "contacts"
    items = string_list(value, field)
    if len(items) > MAX_CONTACTS:
        fail(field, f"at most {MAX_CONTACTS} contacts allowed", field)
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        text(item, where, field, MAX_CONTACT)
        if not is_email_address(item):
            fail(where, "must be an email address", field)
    return dedupe(items)


def jwks(value: object) -> dict[str, Any]:
    """A JWK Set of public keys (RFC 7517 §5): only `keys` is kept, and of each key only
    string, string-array and boolean members. Private key material is refused, never echoed."""
    field = "jwks"
    if not isinstance(value, dict):
        fail(field, "must be a JWK Set object", field)
    keys = value.get("keys")
    if not isinstance(keys, list) or not keys:
        fail("jwks.keys", "must be a non-empty array of JWKs", field)
    if len(keys) > MAX_JWKS_KEYS:
        fail("jwks.keys", f"at most {MAX_JWKS_KEYS} keys allowed", field)
    return {"keys": [_public_jwk(key, f"jwks.keys[{index}]") for index, key in enumerate(keys)]}


def _public_jwk(key: object, where: str) -> dict[str, Any]:
    field = "jwks"
    if not isinstance(key, dict):
        fail(where, "must be a JWK object", field)
    private = sorted(str(name) for name in key if name in _PRIVATE_JWK_MEMBERS)
    if private:
        # Never echo the value: it is a secret the client should not have sent.
        fail(
            where,
            f"contains private key material ({', '.join(private)}); register public keys only",
            field,
        )
    kty = key.get("kty")
    if not isinstance(kty, str) or not kty.strip():
        fail(f"{where}.kty", "must be a non-empty string", field)
    clean: dict[str, Any] = {}
    for name, member in key.items():
        text(name, f"{where} member name", field, MAX_JWK_MEMBER_NAME)
        member_where = f"{where}.{name}"
        # JWK members are strings, string arrays (x5c, key_ops) or booleans (ext).
        if isinstance(member, bool):
            clean[name] = member
        elif isinstance(member, str):
            clean[name] = text(member, member_where, field, MAX_JWK_MEMBER)
        elif isinstance(member, list):
            for item_index, item in enumerate(member):
                text(item, f"{member_where}[{item_index}]", field, MAX_JWK_MEMBER)
            clean[name] = list(member)
        else:
            fail(member_where, "must be a string, an array of strings or a boolean", field)
    return clean


def non_negative_int(value: object, field: str, maximum: int) -> int:
    """A JSON integer in 0..maximum (JSON true/false are not numbers)."""
    # bool is a subclass of int in Python but not a JSON number.
    if isinstance(value, bool) or not isinstance(value, int):
        fail(field, "must be an integer", field)
    if value < 0:
        fail(field, "must not be negative", field)
    if value > maximum:
        fail(field, f"must be at most {maximum}", field)
    return value


def boolean(value: object, field: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        fail(field, "must be a boolean", field)
    return value


def one_of(value: object, field: str, allowed: frozenset[str], message: str) -> str:
    """A string from `allowed`; `message` describes the allowed values."""
    if not isinstance(value, str) or value not in allowed:
        fail(field, message, field)
    return value
