"""The checks of an authorization request, in the order the endpoint runs them.

Before the client and its redirect URI are established, an error can only be shown to the
user (`PageError`): redirecting to an unverified URI would make the endpoint an open
redirector (RFC 6749 §4.1.2.1, RFC 9700 §4.11). After that, every error is an `OAuthError`
returned to the client through its response mode.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from oidc_common.errors import OAuthError
from oidc_common.redirect_uris import redirect_uri_matches
from oidc_common.resource_indicators import PREFIX_FORBIDDEN_SCOPES

from ..oidc_scopes import OFFLINE_ACCESS, OIDC_SCOPES, OPENID
from ..registered_clients import RegisteredClient
from ..resource_servers import ResourceServer
from . import pkce
from .parameters import Parameters

# Response types served (OAuth 2.0 Multiple Response Types §3, OIDC Core §3), as sets of words.
CODE, TOKEN, ID_TOKEN = "code", "token", "id_token"
RESPONSE_TYPE_NAMES = ("code", "token", "id_token", "id_token token")  # as discovery lists them
RESPONSE_TYPES = frozenset(frozenset(name.split(" ")) for name in RESPONSE_TYPE_NAMES)
RESPONSE_MODES = ("query", "fragment", "form_post")
PROMPTS = frozenset({"none", "login", "consent"})
_MAX_AGE = re.compile(r"^[0-9]{1,9}$")
# Parameters whose values are echoed in error descriptions are shown only when plain.
_PLAIN = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$")
# RFC 6749 Appendix A.5: state = 1*VSCHAR (printable ASCII and space).
_VSCHARS = re.compile(r"[\x20-\x7e]*")  # empty: sent as "state=", echoed as sent


class PageError(Exception):
    """An error shown to the user as a page, never sent to the redirect URI."""

    def __init__(self, title: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail
        self.status = status


def _shown(value: str) -> str:
    return value if _PLAIN.match(value) else "(unprintable value)"


def response_type_words(value: str) -> frozenset[str]:
    """`"token id_token"` -> {"id_token", "token"}: order does not matter (Multiple RT §5)."""
    return frozenset(value.split(" ")) - {""}


def canonical(words: frozenset[str]) -> str:
    return " ".join(sorted(words))


@dataclass(frozen=True)
class AuthorizationRequest:
    """A fully checked authorization request, as stored while the user signs in."""

    client_id: str
    redirect_uri: str
    response_type: str  # canonical: words sorted ("id_token token")
    response_mode: str
    scopes: tuple[str, ...]
    audience: str | None
    state: str | None
    nonce: str | None
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    code_challenge: str | None

    @property
    def words(self) -> frozenset[str]:
        return response_type_words(self.response_type)

    @property
    def issues_code(self) -> bool:
        return CODE in self.words

    @property
    def issues_access_token(self) -> bool:
        return TOKEN in self.words

    @property
    def issues_id_token(self) -> bool:
        return ID_TOKEN in self.words

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["prompt"] = sorted(self.prompt)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> AuthorizationRequest:
        data: dict[str, Any] = json.loads(raw)
        data["scopes"] = tuple(data["scopes"])
        data["prompt"] = frozenset(data["prompt"])
        return cls(**data)


@dataclass(frozen=True)
class ErrorTarget:
    """Where and how an error goes back to the client (RFC 6749 §4.1.2.1, §4.2.2.1)."""

    redirect_uri: str
    response_mode: str
    state: str | None


# ----------------------------------------------------------------- before the client is known


def check_single(params: Parameters, name: str) -> str:
    value = params.get(name)
    if name in params.repeated:
        raise PageError("Invalid request", f"The {name} parameter is included more than once.")
    if value is None:
        raise PageError("Invalid request", f"The {name} parameter is missing.")
    return value


def check_client(client: RegisteredClient | None) -> RegisteredClient:
    if client is None:
        raise PageError(
            "Unknown application",
            "This application is not registered here, or it was removed. Ask its "
            "developer to register it again.",
        )
    return client


def check_redirect_uri(client: RegisteredClient, redirect_uri: str) -> str:
    """Exact match against a registered URI; any port on loopback for native apps only
    (RFC 6749 §3.1.2.3, RFC 8252 §7.3, `oidc_common.redirect_uris`)."""
    if not redirect_uri_matches(client.redirect_uris, redirect_uri, client.application_type):
        shown = redirect_uri if len(redirect_uri) <= 200 else redirect_uri[:200] + "..."
        raise PageError(
            "Invalid redirect URI",
            f"The redirect_uri {shown} is not one this application registered (compared "
            "exactly: scheme, host, port, path and query), so you cannot be sent back to it.",
        )
    return redirect_uri


def check_state(params: Parameters) -> None:
    """`state` must be 1*VSCHAR (RFC 6749 Appendix A.5): anything else could not come back to
    the client byte for byte (invalid UTF-8 would return as U+FFFD), so the request is refused
    on a page, never answered at the redirect URI with an altered `state`."""
    if not all(_VSCHARS.fullmatch(state) for state in params.get_all("state")):
        raise PageError(
            "Invalid request",
            "The state parameter must be printable ASCII (RFC 6749 Appendix A.5), so that it "
            "can be returned to the application unchanged.",
        )


def default_response_mode(words: frozenset[str]) -> str:
    """Multiple Response Types §2.1/§3: query for `code` alone, fragment otherwise."""
    return "query" if words == {CODE} else "fragment"


def error_target(params: Parameters, redirect_uri: str) -> ErrorTarget:
    """How to answer errors found from here on: the requested mode when it is usable for the
    response type, else that response type's default (query when it is unknown)."""
    words = response_type_words(params.get("response_type") or "")
    default = default_response_mode(words) if words in RESPONSE_TYPES else "query"
    mode = params.get("response_mode")
    if mode not in RESPONSE_MODES or (mode == "query" and default != "query"):
        mode = default
    # RFC 6749 §4.1.2.1: `state` comes back whenever the request had one (parameters.py
    # bounds every value's length).
    return ErrorTarget(redirect_uri, mode, params.get("state"))


# -------------------------------------------------------------- after the client is known


def check_plain_request(params: Parameters) -> None:
    if params.repeated:
        names = ", ".join(sorted(_shown(name) for name in params.repeated))
        raise OAuthError("invalid_request", f"Parameters included more than once: {names}")
    # OIDC Core §6: request objects are not supported (discovery says so).
    if params.get("request") is not None:
        raise OAuthError("request_not_supported", "The request parameter is not supported")
    if params.get("request_uri") is not None:
        raise OAuthError("request_uri_not_supported", "The request_uri parameter is not supported")


def check_response_type(params: Parameters, client: RegisteredClient) -> frozenset[str]:
    value = params.get("response_type")
    if value is None:
        raise OAuthError("invalid_request", "Missing required parameter: response_type")
    words = response_type_words(value)
    if words not in RESPONSE_TYPES:
        raise OAuthError(
            "unsupported_response_type",
            f"Unsupported response_type {_shown(value)}; "
            "supported: code, token, id_token, id_token token",
        )
    registered = {response_type_words(item) for item in client.response_types}
    if words not in registered:
        # OIDC DCR §2: a client uses only the response types it registered.
        raise OAuthError(
            "unauthorized_client",
            f"The client is not registered for response_type {canonical(words)}",
        )
    return words


def check_response_mode(params: Parameters, words: frozenset[str]) -> str:
    mode = params.get("response_mode")
    if mode is None:
        return default_response_mode(words)
    if mode not in RESPONSE_MODES:
        raise OAuthError(
            "invalid_request", "response_mode must be one of: query, fragment, form_post"
        )
    if mode == "query" and words != {CODE}:
        # Multiple Response Types §2.1: tokens must never travel in a query string.
        raise OAuthError(
            "invalid_request", "response_mode query is not allowed when a token is returned"
        )
    return mode


def check_openid(params: Parameters, words: frozenset[str], requested: list[str]) -> str | None:
    """An ID token from this endpoint needs the `openid` scope and a `nonce` (OIDC Core
    §3.2.2.1, §3.3.2.11); both missing are named together."""
    nonce = params.get("nonce")
    if ID_TOKEN not in words:
        return nonce
    missing = []
    if OPENID not in requested:
        missing.append("the openid scope")
    if nonce is None:
        missing.append("a nonce")
    if missing:
        raise OAuthError(
            "invalid_request",
            f"response_type {canonical(words)} returns an ID token, which needs "
            + " and ".join(missing),
        )
    return nonce


def check_prompt(params: Parameters) -> frozenset[str]:
    value = params.get("prompt")
    if value is None:
        return frozenset()
    prompts = frozenset(value.split(" ")) - {""}
    unknown = prompts - PROMPTS
    if unknown:
        raise OAuthError(
            "invalid_request",
            f"Unsupported prompt value {_shown(sorted(unknown)[0])}; supported: none, login, "
            "consent",
        )
    if "none" in prompts and len(prompts) > 1:
        raise OAuthError("invalid_request", "prompt none must not be combined with other values")
    return prompts


def check_max_age(params: Parameters) -> int | None:
    value = params.get("max_age")
    if value is None:
        return None
    if not _MAX_AGE.match(value):
        raise OAuthError("invalid_request", "max_age must be a non-negative integer of seconds")
    return int(value)


def check_pkce(
    params: Parameters, words: frozenset[str], client: RegisteredClient, *, require_pkce: bool
) -> str | None:
    """Public clients always use PKCE for a code; confidential ones too while the tenant's
    `require_pkce` is on (RFC 9700 §2.1.1)."""
    if CODE not in words:
        return None
    return pkce.check_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        required=client.is_public or require_pkce,
    )


def grantable_scopes(
    requested: list[str],
    client: RegisteredClient,
    words: frozenset[str],
    api: ResourceServer | None,
) -> tuple[str, ...]:
    """The requested scopes this request can be granted, in request order (RFC 6749 §3.3 lets
    the server narrow them): OIDC scopes, and the API's own scopes when one is targeted;
    others are dropped. `offline_access` needs the code flow, a client registered for
    `refresh_token`, and (with an API) an API that allows offline access."""
    allowed = set(OIDC_SCOPES)
    if api is not None:
        # An allowed-prefix resource registers no scopes: what it needs is between the client,
        # the user (who sees them on the consent page) and the resource itself, never a
        # Management API permission name.
        allowed |= set(requested) - PREFIX_FORBIDDEN_SCOPES if api.by_prefix else set(api.scopes)
        if not api.allow_offline_access:
            allowed.discard(OFFLINE_ACCESS)
    if CODE not in words or "refresh_token" not in client.grant_types:
        allowed.discard(OFFLINE_ACCESS)
    if client.scope is not None:  # a client that registered `scope` gets no more than that
        allowed &= client.scope | {OPENID}
    return tuple(scope for scope in requested if scope in allowed)
