"""Validation and merge of `PATCH /api/v2/tenants/settings` bodies.

A PATCH changes only the fields it names; nested objects (`flags`,
`dynamic_client_registration`, its `rate_limit`) merge key by key. Unknown fields, wrong
types and out-of-range values are refused with a message naming the field path.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,63}$")


class SettingsValidationError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path


Validator = Callable[[str, Any], Any]


def _string(max_len: int, min_len: int = 0) -> Validator:
    def check(path: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise SettingsValidationError(path, "expected a string")
        if not min_len <= len(value) <= max_len:
            raise SettingsValidationError(path, f"length must be {min_len}..{max_len}")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            raise SettingsValidationError(path, "control characters are not allowed")
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
    if not _EMAIL.match(value):
        raise SettingsValidationError(path, "expected an email address")
    return value


def _boolean(path: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise SettingsValidationError(path, "expected a boolean")
    return value


def _integer(minimum: int, maximum: int) -> Validator:
    def check(path: str, value: Any) -> Any:
        # bool is an int subclass in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsValidationError(path, "expected an integer")
        if not minimum <= value <= maximum:
            raise SettingsValidationError(path, f"must be between {minimum} and {maximum}")
        return value

    return check


def _auth_methods(path: str, value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise SettingsValidationError(path, "expected a non-empty array")
    for index, item in enumerate(value):
        if item not in AUTH_METHODS:
            raise SettingsValidationError(
                f"{path}[{index}]", f"must be one of {', '.join(AUTH_METHODS)}"
            )
    if len(set(value)) != len(value):
        raise SettingsValidationError(path, "duplicate values")
    return list(value)


@dataclass(frozen=True)
class Obj:
    """A nested object whose members merge key by key."""

    fields: dict[str, Validator | Obj]


SCHEMA = Obj(
    {
        "friendly_name": _string(255, 1),
        "picture_url": _nullable(_url),
        "support_email": _nullable(_email),
        "support_url": _nullable(_url),
        "default_audience": _string(600),
        "flags": Obj({"enable_dynamic_client_registration": _boolean}),
        "dynamic_client_registration": Obj(
            {
                "rate_limit": Obj(
                    {
                        "requests": _integer(1, 100_000),
                        "window_seconds": _integer(1, 86_400),
                    }
                ),
                "max_clients": _integer(1, 1_000_000),
                "unused_client_ttl_hours": _integer(1, 8_760),
                "idle_client_ttl_days": _integer(1, 3_650),
                "allowed_token_endpoint_auth_methods": _auth_methods,
                "require_pkce": _boolean,
                "client_self_management": _boolean,
            }
        ),
    }
)


def _merge(schema: Obj, current: dict[str, Any], patch: Any, path: str) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise SettingsValidationError(path, "expected an object")
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        child = f"{path}.{key}" if path else key
        rule = schema.fields.get(key)
        if rule is None:
            raise SettingsValidationError(child, "unknown field")
        if isinstance(rule, Obj):
            merged[key] = _merge(rule, current.get(key) or {}, value, child)
        else:
            merged[key] = rule(child, value)
    return merged


def apply_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The settings after `patch`, or SettingsValidationError naming the first bad field."""
    return _merge(SCHEMA, current, patch, "")
