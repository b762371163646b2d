"""Validation and merge of `PATCH /api/v2/tenants/settings` bodies.

A PATCH changes only the fields it names; nested objects (`flags`,
`dynamic_client_registration`, its `rate_limit`) merge key by key (`oidc_common.settings_schema`).
Unknown fields, wrong types and out-of-range values are refused with a message naming the field
path. The `dynamic_client_registration` member is the shared registration-policy contract
(`oidc_common.registration_policy`); the other members are this service's own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from oidc_common.registration_policy import POLICY_KEY, POLICY_SCHEMA
from oidc_common.resource_indicators import on_tenant_origin
from oidc_common.settings_schema import (
    Obj,
    SettingsValidationError,
    Validator,
    boolean,
    integer,
    merge,
)
from oidc_common.text import UNSAFE_TEXT, is_email_address
from oidc_common.uris import UriError, parse_uri

__all__ = ["SCHEMA", "SettingsValidationError", "apply_patch", "check_prefixes_off_origin"]


def _string(max_len: int, min_len: int = 0) -> Validator:
    def check(path: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise SettingsValidationError(path, "expected a string")
        if not min_len <= len(value) <= max_len:
            raise SettingsValidationError(path, f"length must be {min_len}..{max_len}")
        if UNSAFE_TEXT.search(value):  # the one text rule (oidc_common.text)
            raise SettingsValidationError(
                path, "control, format or invisible characters are not allowed"
            )
        return value

    return check


def _nullable(inner: Validator) -> Validator:
    def check(path: str, value: Any) -> Any:
        return None if value is None else inner(path, value)

    return check


def _url(path: str, value: Any) -> Any:
    _string(2000, 1)(path, value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise SettingsValidationError(path, "expected an absolute http(s) URL") from exc
    if parts.scheme not in {"https", "http"} or not parts.netloc or "@" in parts.netloc:
        raise SettingsValidationError(path, "expected an absolute http(s) URL")
    return value


def _email(path: str, value: Any) -> Any:
    _string(320, 3)(path, value)
    if not is_email_address(value):
        raise SettingsValidationError(path, "expected an email address")
    return value


SCHEMA = Obj(
    {
        "friendly_name": _string(255, 1),
        "picture_url": _nullable(_url),
        "support_email": _nullable(_email),
        "support_url": _nullable(_url),
        "default_audience": _string(600),
        # Auth0's login-session lifetimes, in hours (the authorize service's defaults: 24, 8).
        "session_lifetime": integer(1, 8760),
        "idle_session_lifetime": integer(1, 8760),
        "flags": Obj({"enable_dynamic_client_registration": boolean}),
        POLICY_KEY: POLICY_SCHEMA,
    }
)


def apply_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The settings after `patch`, or SettingsValidationError naming the first bad field."""
    return merge(SCHEMA, current, patch)


def check_prefixes_off_origin(patch: dict[str, Any], issuer: str) -> None:
    """Refuse an RFC 8707 allowed prefix on the tenant's own origin (`issuer`'s host), where its
    Management API and `/userinfo` live (RFC 9700 §2.3); SettingsValidationError naming the
    entry. Everything else about the prefixes is the schema's to check."""
    policy = patch.get(POLICY_KEY)
    indicators = policy.get("resource_indicators") if isinstance(policy, dict) else None
    prefixes = indicators.get("allowed_url_prefixes") if isinstance(indicators, dict) else None
    for index, prefix in enumerate(prefixes if isinstance(prefixes, list) else ()):
        try:
            parsed = parse_uri(prefix) if isinstance(prefix, str) else None
        except UriError:
            continue
        if parsed is not None and on_tenant_origin(parsed, issuer):
            raise SettingsValidationError(
                f"{POLICY_KEY}.resource_indicators.allowed_url_prefixes[{index}]",
                f"must not be on the tenant's own origin ({issuer}): its Management API and "
                "/userinfo are not resources a user's token may name",
            )
