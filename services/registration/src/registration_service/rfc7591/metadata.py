"""Validation and normalisation of client metadata for open dynamic client registration.

Implements the request side of RFC 7591 §2 / §3.1 and OpenID Connect Dynamic Client Registration
1.0 §2, the update request of RFC 7592 §2.2, and the native-app redirect rules of RFC 8252 §7.
Anyone on the internet may register, so every member is checked for type, size and content, and
only known members survive: unknown ones are dropped, not echoed (RFC 7591 §2).

`validate_client_metadata` raises ClientMetadataError, and nothing else, for any JSON value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import SplitResult, urlsplit

from oidc_common.redirect_uris import FORBIDDEN_SCHEMES, LOOPBACK_HOSTS, is_loopback

__all__ = [
    "AUTH_METHODS",
    "CLIENT_METADATA_FIELDS",
    "DEFAULT_POLICY",
    "GRANT_TYPES",
    "INVALID_CLIENT_METADATA",
    "INVALID_REDIRECT_URI",
    "RESPONSE_TYPES",
    "ClientMetadataError",
    "MetadataPolicy",
    "validate_client_metadata",
    "validate_update_request",
]

# RFC 7591 §3.2.2 error codes.
INVALID_REDIRECT_URI: Final = "invalid_redirect_uri"
INVALID_CLIENT_METADATA: Final = "invalid_client_metadata"

AUTH_METHODS: Final[frozenset[str]] = frozenset(
    {"none", "client_secret_post", "client_secret_basic"}
)
GRANT_TYPES: Final[frozenset[str]] = frozenset(
    {"authorization_code", "implicit", "refresh_token", "client_credentials"}
)
RESPONSE_TYPES: Final[frozenset[str]] = frozenset({"code", "token", "id_token", "id_token token"})
APPLICATION_TYPES: Final[frozenset[str]] = frozenset({"web", "native"})
ID_TOKEN_SIGNING_ALGS: Final[frozenset[str]] = frozenset({"RS256"})

DEFAULT_AUTH_METHOD: Final = "client_secret_post"
DEFAULT_SIGNING_ALG: Final = "RS256"
# Response types of the implicit grant, in the order they are derived (RFC 7591 §2.1).
IMPLICIT_RESPONSE_TYPES: Final = ("token", "id_token", "id_token token")
# Every client metadata member this server registers (RFC 7591 §2, OIDC DCR §2).
CLIENT_METADATA_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "redirect_uris",
        "client_name",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "application_type",
        "scope",
        "contacts",
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "jwks",
        "jwks_uri",
        "id_token_signed_response_alg",
        "default_max_age",
        "require_auth_time",
        "software_id",
        "software_version",
    }
)
# Members that may carry a language tag, `client_name#fr-CA` (OIDC DCR §2.1).
LOCALIZABLE_FIELDS: Final = ("client_name", "client_uri", "logo_uri", "policy_uri", "tos_uri")
# RFC 7592 §2.2: server-managed members a client must not send back in an update.
UPDATE_FORBIDDEN_FIELDS: Final = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)

MAX_CLIENT_NAME: Final = 200
MAX_SCOPE: Final = 1000
MAX_CONTACTS: Final = 10
MAX_CONTACT: Final = 320
MAX_JWKS_KEYS: Final = 10
MAX_JWK_MEMBER: Final = 16384
MAX_SOFTWARE_FIELD: Final = 255
MAX_DEFAULT_MAX_AGE: Final = 10 * 365 * 24 * 3600

# JWK members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# C0/C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates (text spoofing
# on the consent screen) and lone surrogates (not encodable as UTF-8).
_UNSAFE_TEXT: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Characters allowed anywhere in a URI: unreserved, reserved and "%" (RFC 3986 §2).
_NON_URI_CHAR: Final = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+")
_MAX_HOST: Final = 253
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Deliberately loose BCP 47 shape (OIDC DCR §2.1).
_LANGUAGE_TAG: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,34}")
_EMAIL: Final = re.compile(r"[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+")


class ClientMetadataError(Exception):
    """A registration request rejected with an RFC 7591 §3.2.2 error."""

    error: str
    description: str
    field: str | None

    def __init__(self, error: str, description: str, field: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.field = field


@dataclass(frozen=True)
class MetadataPolicy:
    """Per-tenant limits applied on top of the protocol rules."""

    allowed_auth_methods: frozenset[str] = frozenset(
        {"none", "client_secret_post", "client_secret_basic"}
    )
    supported_scopes: frozenset[str] | None = None  # None: any syntactically valid token
    max_redirect_uris: int = 20
    max_uri_length: int = 2000


DEFAULT_POLICY: Final = MetadataPolicy()


def _fail(where: str, message: str, field: str, error: str = INVALID_CLIENT_METADATA) -> NoReturn:
    raise ClientMetadataError(error, f"{where}: {message}", field)


def _show(value: str, limit: int = 40) -> str:
    """A short quoted rendering of client input for error descriptions."""
    return repr(value[:limit] + "..." if len(value) > limit else value)


def _listing(values: frozenset[str]) -> str:
    return ", ".join(sorted(values)) or "(none)"


# --------------------------------------------------------------------------- primitive types


def _text(value: object, where: str, field: str, max_len: int) -> str:
    """A non-blank string of at most `max_len` characters without control characters."""
    if not isinstance(value, str):
        _fail(where, "must be a string", field)
    if not value.strip():
        _fail(where, "must not be empty", field)
    if len(value) > max_len:
        _fail(where, f"must be at most {max_len} characters", field)
    if _UNSAFE_TEXT.search(value):
        _fail(where, "must not contain control characters", field)
    return value


def _string_list(value: object, field: str, error: str = INVALID_CLIENT_METADATA) -> list[Any]:
    if not isinstance(value, list):
        _fail(field, "must be an array of strings", field, error)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            _fail(f"{field}[{index}]", "must be a string", field, error)
    return value


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------- URIs


def _check_authority(netloc: str, where: str, field: str, error: str) -> str:
    """Validate `host[:port]` strictly and return the host, lowercase, brackets stripped.

    urllib is lenient here (`https://[::1]junk/` parses as host ::1), so the authority is
    parsed again by hand; userinfo has already been refused.
    """
    if netloc.startswith("["):
        close = netloc.find("]")
        if close == -1:
            _fail(where, "malformed IPv6 host", field, error)
        host, after = netloc[1:close].lower(), netloc[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            _fail(where, "host is not a valid IPv6 address", field, error)
        if "%" in host:
            _fail(where, "IPv6 zone identifiers are not allowed", field, error)
    else:
        colon = netloc.find(":")
        host, after = (netloc, "") if colon == -1 else (netloc[:colon], netloc[colon:])
        host = host.lower()
        if not host:
            _fail(where, "must include a host", field, error)
        if len(host) > _MAX_HOST or not _HOST_NAME.fullmatch(host):
            _fail(where, "host is not a valid host name", field, error)
        # A numeric last label makes user agents parse the host as IPv4 (WHATWG URL), so
        # "2130706433" or "0x7f.1" would mean 127.0.0.1: only dotted-decimal is accepted.
        if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                _fail(where, "host is not a valid IPv4 address", field, error)
    if after:
        if not after.startswith(":"):
            _fail(where, "malformed host", field, error)
        port = after[1:]
        if not (port.isascii() and port.isdigit()):
            _fail(where, "port must be a decimal number", field, error)
        if len(port) > 5 or not 0 < int(port) <= 65535:
            _fail(where, "port out of range", field, error)
    return host


def _parse_uri(
    value: object, where: str, field: str, error: str, max_len: int
) -> tuple[str, SplitResult, str | None]:
    """Checks common to every URI member; returns the URI, its parts and host (or None)."""
    if not isinstance(value, str):
        _fail(where, "must be a string", field, error)
    if not value:
        _fail(where, "must not be empty", field, error)
    if len(value) > max_len:
        _fail(where, f"must be at most {max_len} characters", field, error)
    bad = _NON_URI_CHAR.search(value)
    if bad:
        char = bad.group()
        if char.isspace() or _UNSAFE_TEXT.fullmatch(char):
            _fail(where, "must not contain whitespace or control characters", field, error)
        if not char.isascii():
            _fail(where, "must be ASCII; percent-encode other characters", field, error)
        _fail(where, f"character {char!r} is not allowed in a URI", field, error)
    if _BAD_PERCENT.search(value):
        _fail(where, "malformed percent-encoding", field, error)
    if "#" in value:
        _fail(where, "fragment not allowed", field, error)  # RFC 6749 §3.1.2
    try:
        parts = urlsplit(value)
    except ValueError:
        _fail(where, "is not a valid URI", field, error)
    if not parts.scheme:
        _fail(where, "must be an absolute URI with a scheme", field, error)  # RFC 3986 §4.3
    if parts.scheme in FORBIDDEN_SCHEMES:
        _fail(where, f"scheme {parts.scheme!r} is not allowed", field, error)
    if "@" in parts.netloc:
        _fail(where, "userinfo (user:password@) not allowed", field, error)
    if any(bracket in parts.path + parts.query for bracket in "[]"):
        # RFC 3986 §3.2.2: brackets are only valid around an IP literal host.
        _fail(where, "'[' and ']' are only allowed around an IPv6 host", field, error)
    host: str | None = None
    if parts.netloc:  # empty authority (`myapp:///cb`) has no host to check
        host = _check_authority(parts.netloc, where, field, error)
    return value, parts, host


def _https_uri(value: object, where: str, field: str, policy: MetadataPolicy) -> tuple[str, str]:
    """An https URL with a host (client_uri, logo_uri, policy_uri, tos_uri, jwks_uri)."""
    uri, parts, host = _parse_uri(
        value, where, field, INVALID_CLIENT_METADATA, policy.max_uri_length
    )
    if parts.scheme != "https":
        _fail(where, "must be an https URL", field)
    if host is None:
        _fail(where, "must include a host", field)
    return uri, host


def _is_local_host(host: str) -> bool:
    """Loopback in any spelling: LOOPBACK_HOSTS, `localhost.`, `*.localhost` (RFC 6761 §6.3),
    127.0.0.0/8, IPv4-mapped loopback, and the unspecified address."""
    bare = host.rstrip(".")
    if bare in LOOPBACK_HOSTS or bare == "localhost" or bare.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _redirect_uri(
    value: object, where: str, application_type: str, implicit: bool, policy: MetadataPolicy
) -> tuple[str, str | None]:
    """One redirect URI; returns it and its host when it is an http(s) URL."""
    field, error = "redirect_uris", INVALID_REDIRECT_URI
    uri, parts, host = _parse_uri(value, where, field, error, policy.max_uri_length)
    scheme = parts.scheme
    if scheme in ("http", "https"):
        if host is None:
            _fail(where, "must include a host", field, error)
        if application_type == "web" and implicit:
            # OIDC DCR §2 application_type: implicit web clients use https, never localhost.
            if scheme != "https":
                _fail(where, "web clients using the implicit grant must use https", field, error)
            if _is_local_host(host):
                _fail(
                    where,
                    "web clients using the implicit grant must not use a loopback host",
                    field,
                    error,
                )
        if scheme == "http" and not is_loopback(uri):
            # RFC 8252 §7.3 (native) and OIDC DCR §2 (web): plain http only on loopback.
            _fail(
                where,
                "http is only allowed on a loopback host (127.0.0.1, [::1], localhost)",
                field,
                error,
            )
        return uri, host
    if application_type != "native":
        _fail(where, f"scheme {scheme!r} is only allowed for native clients", field, error)
    # RFC 8252 §7.1 private-use URI scheme, e.g. com.example.app:/oauth2redirect
    if not parts.netloc and not parts.path:
        _fail(where, "private-use scheme URI needs a path after the scheme", field, error)
    return uri, None


# -------------------------------------------------------------------- grant/response types


def _grant_and_response_types(
    body: dict[Any, Any], auth_method: str
) -> tuple[list[str], list[str]]:
    grants: list[str] | None = None
    responses: list[str] | None = None
    if body.get("grant_types") is not None:
        grants = _dedupe(_string_list(body["grant_types"], "grant_types"))
        for index, grant in enumerate(grants):
            if grant not in GRANT_TYPES:
                _fail(
                    f"grant_types[{index}]",
                    f"unsupported grant type {_show(grant)}; supported: {_listing(GRANT_TYPES)}",
                    "grant_types",
                )
        if not grants:
            _fail("grant_types", "must not be empty", "grant_types")
    if body.get("response_types") is not None:
        raw = _string_list(body["response_types"], "response_types")
        normalised = ["id_token token" if item == "token id_token" else item for item in raw]
        for index, item in enumerate(normalised):
            if item not in RESPONSE_TYPES:
                _fail(
                    f"response_types[{index}]",
                    f"unsupported response type {_show(item)}; "
                    "supported: code, id_token, token, id_token token",
                    "response_types",
                )
        responses = _dedupe(normalised)

    # RFC 7591 §2.1: code <-> authorization_code, token/id_token <-> implicit.
    if grants is None:
        if responses is None:
            grants, responses = ["authorization_code"], ["code"]
        else:
            if not responses:
                _fail(
                    "response_types",
                    "must not be empty when grant_types is omitted",
                    "response_types",
                )
            grants = []
            if "code" in responses:
                grants.append("authorization_code")
            if any(item in IMPLICIT_RESPONSE_TYPES for item in responses):
                grants.append("implicit")
    elif responses is None:
        responses = []
        if "authorization_code" in grants:
            responses.append("code")
        if "implicit" in grants:
            responses.extend(IMPLICIT_RESPONSE_TYPES)
    else:
        uses_code = "code" in responses
        uses_implicit = any(item in IMPLICIT_RESPONSE_TYPES for item in responses)
        if uses_code != ("authorization_code" in grants):
            _fail(
                "grant_types",
                "response type 'code' and grant type 'authorization_code' must be registered "
                "together (RFC 7591 §2.1)",
                "grant_types",
            )
        if uses_implicit != ("implicit" in grants):
            _fail(
                "grant_types",
                "response types 'token'/'id_token' and grant type 'implicit' must be registered "
                "together (RFC 7591 §2.1)",
                "grant_types",
            )

    if "refresh_token" in grants and "authorization_code" not in grants:
        _fail("grant_types", "refresh_token requires authorization_code", "grant_types")
    if "client_credentials" in grants and auth_method == "none":
        _fail(
            "grant_types",
            "client_credentials requires a confidential client "
            "(token_endpoint_auth_method other than 'none')",
            "grant_types",
        )
    return grants, responses


def _auth_method(body: dict[Any, Any], policy: MetadataPolicy) -> str:
    field = "token_endpoint_auth_method"
    allowed = policy.allowed_auth_methods & AUTH_METHODS
    value = body.get(field)
    if value is None:
        if DEFAULT_AUTH_METHOD in allowed:
            return DEFAULT_AUTH_METHOD
        # RFC 7591 §2 lets the server substitute a value; fall back to the other secret-based
        # method, but never silently turn a client into a public one.
        for substitute in ("client_secret_basic", "client_secret_post"):
            if substitute in allowed:
                return substitute
        _fail(field, f"is required by this server; allowed: {_listing(allowed)}", field)
    if not isinstance(value, str):
        _fail(field, "must be a string", field)
    if value not in AUTH_METHODS:
        _fail(
            field,
            f"unsupported value {_show(value)}; supported: {_listing(AUTH_METHODS)}",
            field,
        )
    if value not in allowed:
        _fail(field, f"{value!r} is not allowed here; allowed: {_listing(allowed)}", field)
    return value


# ------------------------------------------------------------------------ other members


def _localized_keys(body: dict[Any, Any]) -> dict[str, list[str]]:
    """Present members per localizable field: the plain one first, then `name#tag` ones."""
    found: dict[str, list[str]] = {name: [] for name in LOCALIZABLE_FIELDS}
    seen_tags: set[tuple[str, str]] = set()
    for name in LOCALIZABLE_FIELDS:
        if body.get(name) is not None:
            found[name].append(name)
    for key, value in body.items():
        if not isinstance(key, str) or "#" not in key or value is None:
            continue
        base, _, tag = key.partition("#")
        if base not in found:
            continue  # unknown member: dropped
        if not _LANGUAGE_TAG.fullmatch(tag):
            _fail(key, "invalid language tag", key)
        if (base, tag.lower()) in seen_tags:
            _fail(key, "language tag given more than once", key)
        seen_tags.add((base, tag.lower()))
        found[base].append(key)
    return found


def _scope(value: object, policy: MetadataPolicy) -> str:
    field = "scope"
    if not isinstance(value, str):
        _fail(field, "must be a string of space-separated scope values", field)
    if len(value) > MAX_SCOPE:
        _fail(field, f"must be at most {MAX_SCOPE} characters", field)
    tokens = _dedupe([token for token in value.split(" ") if token])
    if not tokens:
        _fail(field, "must contain at least one scope value", field)
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            _fail(field, f"invalid scope value {_show(token)} (RFC 6749 §3.3)", field)
    if policy.supported_scopes is not None:
        unsupported = [token for token in tokens if token not in policy.supported_scopes]
        if unsupported:
            _fail(field, f"unsupported scope value {_show(unsupported[0])}", field)
    return " ".join(tokens)


def _contacts(value: object) -> list[str]:
    field = "contacts"
    items = _string_list(value, field)
    if len(items) > MAX_CONTACTS:
        _fail(field, f"at most {MAX_CONTACTS} contacts allowed", field)
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        _text(item, where, field, MAX_CONTACT)
        if not _EMAIL.fullmatch(item):
            _fail(where, "must be an email address", field)
    return _dedupe(items)


def _jwks(value: object) -> dict[str, Any]:
    field = "jwks"
    if not isinstance(value, dict):
        _fail(field, "must be a JWK Set object", field)
    keys = value.get("keys")
    if not isinstance(keys, list) or not keys:
        _fail("jwks.keys", "must be a non-empty array of JWKs", field)
    if len(keys) > MAX_JWKS_KEYS:
        _fail("jwks.keys", f"at most {MAX_JWKS_KEYS} keys allowed", field)
    copied: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        where = f"jwks.keys[{index}]"
        if not isinstance(key, dict):
            _fail(where, "must be a JWK object", field)
        private = sorted(str(name) for name in key if name in _PRIVATE_JWK_MEMBERS)
        if private:
            # Never echo the value: it is a secret the client should not have sent.
            _fail(
                where,
                f"contains private key material ({', '.join(private)}); register public keys only",
                field,
            )
        kty = key.get("kty")
        if not isinstance(kty, str) or not kty.strip():
            _fail(f"{where}.kty", "must be a non-empty string", field)
        clean: dict[str, Any] = {}
        for name, member in key.items():
            _text(name, f"{where} member name", field, 64)
            member_where = f"{where}.{name}"
            # JWK members are strings, string arrays (x5c, key_ops) or booleans (ext).
            if isinstance(member, bool):
                clean[name] = member
            elif isinstance(member, str):
                clean[name] = _text(member, member_where, field, MAX_JWK_MEMBER)
            elif isinstance(member, list):
                for item_index, item in enumerate(member):
                    _text(item, f"{member_where}[{item_index}]", field, MAX_JWK_MEMBER)
                clean[name] = list(member)
            else:
                _fail(member_where, "must be a string, an array of strings or a boolean", field)
        copied.append(clean)
    return {"keys": copied}


def _non_negative_int(value: object, field: str, maximum: int) -> int:
    # bool is a subclass of int in Python but not a JSON number.
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, "must be an integer", field)
    if value < 0:
        _fail(field, "must not be negative", field)
    if value > maximum:
        _fail(field, f"must be at most {maximum}", field)
    return value


# --------------------------------------------------------------------------------- entry points


def validate_client_metadata(
    raw: object, policy: MetadataPolicy = DEFAULT_POLICY
) -> dict[str, Any]:
    """Validate a registration request body (RFC 7591 §3.1) and return the client metadata to
    register, defaults filled in. Raises ClientMetadataError and nothing else."""
    if not isinstance(raw, dict):
        raise ClientMetadataError(INVALID_CLIENT_METADATA, "request body must be a JSON object")
    body: dict[Any, Any] = raw

    application_type = body.get("application_type")
    if application_type is None:
        application_type = "web"  # OIDC DCR §2
    elif not isinstance(application_type, str) or application_type not in APPLICATION_TYPES:
        _fail("application_type", "must be 'web' or 'native'", "application_type")

    auth_method = _auth_method(body, policy)
    grant_types, response_types = _grant_and_response_types(body, auth_method)
    implicit = "implicit" in grant_types

    # redirect_uris: required, checked one by one (RFC 7591 §2, RFC 8252 §7).
    field = "redirect_uris"
    uris_value = body.get(field)
    if uris_value is None:
        _fail(field, "is required", field, INVALID_REDIRECT_URI)
    uris = _string_list(uris_value, field, INVALID_REDIRECT_URI)
    if not uris:
        _fail(field, "must not be empty", field, INVALID_REDIRECT_URI)
    if len(uris) > policy.max_redirect_uris:
        _fail(
            field,
            f"at most {policy.max_redirect_uris} redirect URIs allowed",
            field,
            INVALID_REDIRECT_URI,
        )
    redirect_uris: list[str] = []
    web_hosts: set[str] = set()
    for index, item in enumerate(uris):
        where = f"{field}[{index}]"
        uri, host = _redirect_uri(item, where, application_type, implicit, policy)
        if uri in redirect_uris:
            _fail(
                where,
                f"duplicate of redirect_uris[{redirect_uris.index(uri)}]",
                field,
                INVALID_REDIRECT_URI,
            )
        redirect_uris.append(uri)
        if host is not None:
            web_hosts.add(host)

    result: dict[str, Any] = {
        "redirect_uris": redirect_uris,
        "application_type": application_type,
        "token_endpoint_auth_method": auth_method,
        "grant_types": grant_types,
        "response_types": response_types,
    }

    alg = body.get("id_token_signed_response_alg")
    if alg is None:
        alg = DEFAULT_SIGNING_ALG
    elif not isinstance(alg, str) or alg not in ID_TOKEN_SIGNING_ALGS:
        _fail(
            "id_token_signed_response_alg",
            f"must be one of: {_listing(ID_TOKEN_SIGNING_ALGS)}",
            "id_token_signed_response_alg",
        )
    result["id_token_signed_response_alg"] = alg

    require_auth_time = body.get("require_auth_time")
    if require_auth_time is None:
        require_auth_time = False
    elif not isinstance(require_auth_time, bool):
        _fail("require_auth_time", "must be a boolean", "require_auth_time")
    result["require_auth_time"] = require_auth_time

    localized = _localized_keys(body)
    for key in localized["client_name"]:
        result[key] = _text(body[key], key, key, MAX_CLIENT_NAME)
    # RFC 7591 §5: logo/policy/tos pages must live on a host the client already controls.
    branding_hosts = set(web_hosts)
    for key in localized["client_uri"]:
        result[key], host = _https_uri(body[key], key, key, policy)
        branding_hosts.add(host)
    for name in ("logo_uri", "policy_uri", "tos_uri"):
        for key in localized[name]:
            result[key], host = _https_uri(body[key], key, key, policy)
            if host not in branding_hosts:
                _fail(key, "must be on the host of a redirect URI or of client_uri", key)

    optional: dict[str, Callable[[object], object]] = {
        "scope": lambda value: _scope(value, policy),
        "contacts": _contacts,
        "jwks": _jwks,
        "jwks_uri": lambda value: _https_uri(value, "jwks_uri", "jwks_uri", policy)[0],
        "default_max_age": lambda value: _non_negative_int(
            value, "default_max_age", MAX_DEFAULT_MAX_AGE
        ),
        "software_id": lambda value: _text(value, "software_id", "software_id", MAX_SOFTWARE_FIELD),
        "software_version": lambda value: _text(
            value, "software_version", "software_version", MAX_SOFTWARE_FIELD
        ),
    }
    if body.get("jwks") is not None and body.get("jwks_uri") is not None:
        _fail("jwks", "jwks and jwks_uri must not both be present (RFC 7591 §2)", "jwks")
    for name, check in optional.items():
        if body.get(name) is not None:
            result[name] = check(body[name])
    return result


def validate_update_request(
    raw: object, client_id: str, policy: MetadataPolicy = DEFAULT_POLICY
) -> tuple[dict[str, Any], str | None]:
    """Validate an RFC 7592 §2.2 client update request (a full replacement of the metadata).

    Returns the metadata exactly as `validate_client_metadata` would (omitted members take
    their defaults) and the `client_secret` the client sent, if any, for the caller to compare
    with the current one.
    """
    if not isinstance(raw, dict):
        raise ClientMetadataError(INVALID_CLIENT_METADATA, "request body must be a JSON object")
    given = raw.get("client_id")
    if given is None:
        _fail("client_id", "is required in an update request (RFC 7592 §2.2)", "client_id")
    if not isinstance(given, str) or given != client_id:
        _fail("client_id", "does not match the client being updated", "client_id")
    for name in UPDATE_FORBIDDEN_FIELDS:
        if name in raw:
            _fail(name, "must not be sent in an update request (RFC 7592 §2.2)", name)
    secret = raw.get("client_secret")
    if secret is not None and not isinstance(secret, str):
        _fail("client_secret", "must be a string", "client_secret")
    return validate_client_metadata(raw, policy), secret
