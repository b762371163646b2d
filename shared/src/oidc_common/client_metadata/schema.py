"""The client metadata schema: one entry per member, checked in the order of the table.

`validate_client_metadata` walks SCHEMA: each `Member` names its JSON type, its default, the
check applied to a given value and the specification section the rule comes from; a `Rule`
between members ties several of them together. Later entries see what earlier ones registered
(`Context.metadata`), which is why the table's order matters: the redirect URIs are checked
once the application type and the grant types are known, and the logo, policy and terms URLs
once the hosts of the redirect URIs and `client_uri` are. Only members of the table survive:
unknown ones are dropped, not echoed (RFC 7591 §2). Registration (`POST /oidc/register`), the
RFC 7592 update and the Management API's client update all validate through this table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..redirect_uris import InvalidRedirectUri, check_redirect_uri
from . import types, values
from .errors import INVALID_CLIENT_METADATA, INVALID_REDIRECT_URI, ClientMetadataError, fail
from .policy import DEFAULT_POLICY, MetadataPolicy

__all__ = [
    "CLIENT_METADATA_FIELDS",
    "LOCALIZABLE_FIELDS",
    "SCHEMA",
    "is_client_metadata_member",
    "validate_client_metadata",
]

ID_TOKEN_SIGNING_ALGS: Final[frozenset[str]] = frozenset({"RS256"})
MAX_CLIENT_NAME: Final = 200
MAX_SOFTWARE_FIELD: Final = 255
MAX_DEFAULT_MAX_AGE: Final = 10 * 365 * 24 * 3600
# Deliberately loose BCP 47 shape (OIDC DCR §2.1).
_LANGUAGE_TAG: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,34}")


@dataclass
class Context:
    """One validation: the request body, the tenant's limits, what is registered so far."""

    body: dict[Any, Any]
    policy: MetadataPolicy
    metadata: dict[str, Any] = field(default_factory=dict)
    # Hosts of the redirect URIs and client_uri: where logo/policy/tos may live (RFC 7591 §5).
    hosts: set[str] = field(default_factory=set)


Check = Callable[[Any, str, Context], Any]  # (given value, member name as sent, context)


@dataclass(frozen=True)
class Member:
    """One client metadata member. A value that is absent or null takes `default` (a
    function of the context; None: left out), or is refused when `required`."""

    name: str
    type: str  # the JSON type, as the specification describes it
    section: str
    check: Check
    default: Callable[[Context], Any] | None = None
    required: bool = False
    error: str = INVALID_CLIENT_METADATA  # the RFC 7591 §3.2.2 code for this member
    localizable: bool = False  # may also be sent as `name#language-tag` (OIDC DCR §2.1)

    def apply(self, ctx: Context) -> None:
        keys = _language_keys(ctx.body, self.name) if self.localizable else []
        if ctx.body.get(self.name) is not None:
            keys.insert(0, self.name)
        if keys:
            for key in keys:
                ctx.metadata[key] = self.check(ctx.body[key], key, ctx)
        elif self.required:
            fail(self.name, "is required", self.name, self.error)
        elif self.default is not None:
            ctx.metadata[self.name] = self.default(ctx)


@dataclass(frozen=True)
class Rule:
    """A rule over several members, applied where it stands in the table."""

    name: str
    section: str
    apply: Callable[[Context], None]


def _language_keys(body: dict[Any, Any], name: str) -> list[str]:
    """The `name#tag` members present, each tag well-formed and given once (any case)."""
    found: list[str] = []
    seen: set[str] = set()
    for key, value in body.items():
        if not isinstance(key, str) or value is None:
            continue
        base, hash_sign, tag = key.partition("#")
        if base != name or not hash_sign:
            continue
        if not _LANGUAGE_TAG.fullmatch(tag):
            fail(key, "invalid language tag", key)
        if tag.lower() in seen:
            fail(key, "language tag given more than once", key)
        seen.add(tag.lower())
        found.append(key)
    return found


# --------------------------------------------------------------------- member checks


def _redirect_uris(value: object, key: str, ctx: Context) -> list[str]:
    """RFC 7591 §2: a non-empty list, within the tenant's limit, without duplicates; each URI
    under the registration rules of `oidc_common.redirect_uris`."""
    error = INVALID_REDIRECT_URI
    uris = values.string_list(value, key, error)
    if not uris:
        fail(key, "must not be empty", key, error)
    limit = ctx.policy.max_redirect_uris
    if len(uris) > limit:
        fail(key, f"at most {limit} redirect URIs allowed", key, error)
    application_type = ctx.metadata["application_type"]
    implicit = "implicit" in ctx.metadata["grant_types"]
    registered: list[str] = []
    for index, uri in enumerate(uris):
        where = f"{key}[{index}]"
        try:
            host = check_redirect_uri(
                uri, application_type, implicit=implicit, max_length=ctx.policy.max_uri_length
            )
        except InvalidRedirectUri as exc:
            fail(where, str(exc), key, error)
        if uri in registered:
            fail(where, f"duplicate of {key}[{registered.index(uri)}]", key, error)
        registered.append(uri)
        if host is not None:
            ctx.hosts.add(host)
    return registered


def _post_logout_redirect_uris(value: object, key: str, ctx: Context) -> list[str]:
    """RP-Initiated Logout 1.0 §3.1: where the user may be sent after logout; each URI under
    the redirect-URI rules (`oidc_common.redirect_uris`), matched exactly at logout."""
    uris = values.string_list(value, key)
    limit = ctx.policy.max_redirect_uris
    if len(uris) > limit:
        fail(key, f"at most {limit} URIs allowed", key)
    registered: list[str] = []
    for index, uri in enumerate(uris):
        where = f"{key}[{index}]"
        try:
            check_redirect_uri(
                uri,
                ctx.metadata["application_type"],
                implicit=False,
                max_length=ctx.policy.max_uri_length,
            )
        except InvalidRedirectUri as exc:
            fail(where, str(exc), key)
        if uri in registered:
            fail(where, f"duplicate of {key}[{registered.index(uri)}]", key)
        registered.append(uri)
    return registered


def _logout_uri(value: object, key: str, ctx: Context) -> str:
    """Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0 §2: an absolute https URL (http
    on a loopback host, for local development) without a fragment."""
    return values.logout_url(value, key, ctx.policy.max_uri_length)


def _frontchannel_logout_uri(value: object, key: str, ctx: Context) -> str:
    """Front-Channel Logout 1.0 §2: scheme, host and port those of a registered redirect URI
    (the page is framed in the provider's logged-out page)."""
    uri = _logout_uri(value, key, ctx)
    origins = {values.origin_of(redirect) for redirect in ctx.metadata["redirect_uris"]}
    if values.origin_of(uri) not in origins:
        fail(key, "must have the scheme, host and port of a redirect URI", key)
    return uri


def _client_uri(value: object, key: str, ctx: Context) -> str:
    uri, host = values.https_url(value, key, key, ctx.policy.max_uri_length)
    ctx.hosts.add(host)
    return uri


def _branding_uri(value: object, key: str, ctx: Context) -> str:
    """RFC 7591 §5: logo, policy and terms pages live on a host the client already controls."""
    uri, host = values.https_url(value, key, key, ctx.policy.max_uri_length)
    if host not in ctx.hosts:
        fail(key, "must be on the host of a redirect URI or of client_uri", key)
    return uri


def _one_jwk_source(ctx: Context) -> None:
    if ctx.body.get("jwks") is not None and ctx.body.get("jwks_uri") is not None:
        fail("jwks", "jwks and jwks_uri must not both be present (RFC 7591 §2)", "jwks")


def _keys_for_assertions(ctx: Context) -> None:
    """OIDC Core §9: a private_key_jwt client registers its keys, `jwks` or `jwks_uri`."""
    if ctx.metadata.get("token_endpoint_auth_method") != types.PRIVATE_KEY_JWT:
        return
    if ctx.metadata.get("jwks") is None and ctx.metadata.get("jwks_uri") is None:
        fail(
            "jwks",
            "jwks or jwks_uri is required with token_endpoint_auth_method private_key_jwt",
            "jwks",
        )


def _assertion_alg(value: object, key: str, ctx: Context) -> str:
    allowed = types.CLIENT_ASSERTION_ALGS
    return values.one_of(value, key, allowed, f"must be one of: {values.listing(allowed)}")


def _link_types(ctx: Context) -> None:
    types.link_grant_and_response_types(ctx.metadata)


def _application_type(value: object, key: str, ctx: Context) -> str:
    return types.application_type(value)


def _auth_method(value: object, key: str, ctx: Context) -> str:
    return types.auth_method(value, ctx.policy.allowed_auth_methods)


def _default_auth_method(ctx: Context) -> str:
    return types.default_auth_method(ctx.policy.allowed_auth_methods)


def _grant_types(value: object, key: str, ctx: Context) -> list[str]:
    return types.grant_types(value)


def _response_types(value: object, key: str, ctx: Context) -> list[str]:
    return types.response_types(value)


def _id_token_alg(value: object, key: str, ctx: Context) -> str:
    allowed = ID_TOKEN_SIGNING_ALGS
    return values.one_of(value, key, allowed, f"must be one of: {values.listing(allowed)}")


def _boolean(value: object, key: str, ctx: Context) -> bool:
    return values.boolean(value, key)


def _scope(value: object, key: str, ctx: Context) -> str:
    return values.scope(value, ctx.policy.supported_scopes)


def _contacts(value: object, key: str, ctx: Context) -> list[str]:
    return values.contacts(value)


def _jwks(value: object, key: str, ctx: Context) -> dict[str, Any]:
    return values.jwks(value)


def _jwks_uri(value: object, key: str, ctx: Context) -> str:
    return values.https_url(value, key, key, ctx.policy.max_uri_length)[0]


def _default_max_age(value: object, key: str, ctx: Context) -> int:
    return values.non_negative_int(value, key, MAX_DEFAULT_MAX_AGE)


def _text(max_len: int) -> Check:
    def check(value: object, key: str, ctx: Context) -> str:
        return values.text(value, key, key, max_len)

    return check


def _const(value: object) -> Callable[[Context], Any]:
    return lambda _: value


_RFC7591 = "RFC 7591 §2"
_DCR = "OIDC DCR 1.0 §2"
_URL = "https URL"
# The order is the order of the checks (see the module docstring).
SCHEMA: Final[tuple[Member | Rule, ...]] = (
    Member("application_type", "string", _DCR, _application_type, default=_const("web")),
    Member("token_endpoint_auth_method", "string", _RFC7591, _auth_method, _default_auth_method),
    Member("grant_types", "array of strings", _RFC7591, _grant_types),
    Member("response_types", "array of strings", _RFC7591, _response_types),
    Rule("grant_types and response_types correspond", "RFC 7591 §2.1", _link_types),
    Member(
        "redirect_uris",
        "array of URIs",
        "RFC 7591 §2, RFC 8252 §7, OIDC DCR 1.0 §2",
        _redirect_uris,
        required=True,
        error=INVALID_REDIRECT_URI,
    ),
    Member("id_token_signed_response_alg", "string", _DCR, _id_token_alg, _const("RS256")),
    Member("require_auth_time", "boolean", _DCR, _boolean, default=_const(False)),
    Member("client_name", "string", _RFC7591, _text(MAX_CLIENT_NAME), localizable=True),
    Member("client_uri", _URL, _RFC7591, _client_uri, localizable=True),
    Member("logo_uri", _URL, "RFC 7591 §2, §5", _branding_uri, localizable=True),
    Member("policy_uri", _URL, "RFC 7591 §2, §5", _branding_uri, localizable=True),
    Member("tos_uri", _URL, "RFC 7591 §2, §5", _branding_uri, localizable=True),
    Rule("jwks and jwks_uri exclude each other", _RFC7591, _one_jwk_source),
    Member("scope", "string of scope tokens", "RFC 7591 §2, RFC 6749 §3.3", _scope),
    Member("contacts", "array of email addresses", _RFC7591, _contacts),
    Member("jwks", "JWK Set", _RFC7591, _jwks),
    Member("jwks_uri", _URL, _RFC7591, _jwks_uri),
    Member("token_endpoint_auth_signing_alg", "string", _DCR, _assertion_alg),
    Rule("private_key_jwt needs registered keys", "OIDC Core 1.0 §9", _keys_for_assertions),
    Member("default_max_age", "integer (seconds)", _DCR, _default_max_age),
    Member("software_id", "string", _RFC7591, _text(MAX_SOFTWARE_FIELD)),
    Member("software_version", "string", _RFC7591, _text(MAX_SOFTWARE_FIELD)),
    Member(
        "post_logout_redirect_uris",
        "array of URIs",
        "RP-Initiated Logout 1.0 §3.1",
        _post_logout_redirect_uris,
    ),
    Member("backchannel_logout_uri", "URL", "Back-Channel Logout 1.0 §2.2", _logout_uri),
    Member(
        "backchannel_logout_session_required",
        "boolean",
        "Back-Channel Logout 1.0 §2.2",
        _boolean,
    ),
    Member(
        "frontchannel_logout_uri", "URL", "Front-Channel Logout 1.0 §2", _frontchannel_logout_uri
    ),
    Member(
        "frontchannel_logout_session_required",
        "boolean",
        "Front-Channel Logout 1.0 §2",
        _boolean,
    ),
)

_MEMBERS: Final = tuple(entry for entry in SCHEMA if isinstance(entry, Member))
# Every client metadata member this server registers (RFC 7591 §2, OIDC DCR §2).
CLIENT_METADATA_FIELDS: Final[frozenset[str]] = frozenset(member.name for member in _MEMBERS)
# Members that may carry a language tag, `client_name#fr-CA` (OIDC DCR §2.1).
LOCALIZABLE_FIELDS: Final[frozenset[str]] = frozenset(
    member.name for member in _MEMBERS if member.localizable
)


def is_client_metadata_member(name: str) -> bool:
    """Whether `name` is a member of the schema, or `member#tag` of a localizable one."""
    base, _, tag = name.partition("#")
    return base in CLIENT_METADATA_FIELDS and (not tag or base in LOCALIZABLE_FIELDS)


def validate_client_metadata(
    raw: object, policy: MetadataPolicy = DEFAULT_POLICY
) -> dict[str, Any]:
    """Validate a client metadata object (a registration request, RFC 7591 §3.1) against
    SCHEMA and `policy`; return the metadata to register, defaults filled in.

    Raises ClientMetadataError (`invalid_redirect_uri` or `invalid_client_metadata`, RFC 7591
    §3.2.2), and nothing else, for any JSON value.
    """
    if not isinstance(raw, dict):
        raise ClientMetadataError(INVALID_CLIENT_METADATA, "request body must be a JSON object")
    ctx = Context(raw, policy)
    for entry in SCHEMA:
        entry.apply(ctx)
    return ctx.metadata
