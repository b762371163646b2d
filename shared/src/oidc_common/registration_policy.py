"""The registration-policy contract: the `dynamic_client_registration` member of tenant settings.

Each setting is declared once, as a field of `RegistrationPolicy`: its type, its default, its
place in the settings document, its PATCH validation and what it means. The two services read
that one declaration: tenant-settings validates a `PATCH /api/v2/tenants/settings` against
`POLICY_SCHEMA` and gives a new tenant `RegistrationPolicy().to_settings()`; registration turns
the settings snapshot a request was decided on into the `RegistrationPolicy` it applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from .client_metadata import TOKEN_ENDPOINT_AUTH_METHODS, MetadataPolicy
from .resource_indicators import check_resource_prefix
from .settings_schema import (
    Obj,
    SettingsValidationError,
    Validator,
    boolean,
    integer,
    string_list,
)
from .uris import UriError, parse_authority

__all__ = ["POLICY_KEY", "POLICY_SCHEMA", "SETTINGS", "RegistrationPolicy", "Setting"]

POLICY_KEY: Final = "dynamic_client_registration"


@dataclass(frozen=True)
class Setting:
    """One policy setting: where it sits under POLICY_KEY, how a PATCH value is checked, and
    how a stored JSON value becomes the attribute (`load`) and back (`dump`)."""

    attribute: str
    path: tuple[str, ...]
    default: Any
    check: Validator
    meaning: str
    load: Callable[[Any], Any]
    dump: Callable[[Any], Any]


def _auth_methods(path: str, value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise SettingsValidationError(path, "expected a non-empty array")
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in TOKEN_ENDPOINT_AUTH_METHODS:
            allowed = ", ".join(sorted(TOKEN_ENDPOINT_AUTH_METHODS))
            raise SettingsValidationError(f"{path}[{index}]", f"must be one of {allowed}")
    if len(set(value)) != len(value):
        raise SettingsValidationError(path, "duplicate values")
    return list(value)


def _host_name(value: str) -> str:
    """A host name without port, lowercase (a Client ID Metadata Document host)."""
    try:
        host, _raw, port = parse_authority(value)
    except UriError as exc:
        raise ValueError(str(exc)) from exc
    if port is not None:
        raise ValueError("a host name without a port")
    return host


def _load_auth_methods(raw: Any) -> frozenset[str]:
    # An empty or missing list means every method, as in a settings document of an older
    # version; unknown names are ignored.
    return frozenset(raw) & TOKEN_ENDPOINT_AUTH_METHODS if raw else TOKEN_ENDPOINT_AUTH_METHODS


def _setting(
    default: Any,
    path: tuple[str, ...],
    check: Validator,
    meaning: str,
    load: Callable[[Any], Any] | None = None,
    dump: Callable[[Any], Any] | None = None,
) -> Any:
    metadata = {
        "path": path,
        "check": check,
        "meaning": meaning,
        "load": load or type(default),
        "dump": dump or (lambda value: value),
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RegistrationPolicy:
    """A tenant's open-registration policy, with the defaults a new tenant gets."""

    rate_limit_requests: int = _setting(
        20,
        ("rate_limit", "requests"),
        integer(1, 100_000),
        "registrations per window, per tenant and client IP (token bucket)",
    )
    rate_limit_window_seconds: int = _setting(
        60, ("rate_limit", "window_seconds"), integer(1, 86_400), "the rate limit's window"
    )
    max_clients: int = _setting(
        1000,
        ("max_clients",),
        integer(1, 1_000_000),
        "cap on live dynamically registered clients; never-used ones are evicted first",
    )
    unused_client_ttl_hours: int = _setting(
        24,
        ("unused_client_ttl_hours",),
        integer(1, 8_760),
        "the reaper deletes clients never used this long after registering",
    )
    idle_client_ttl_days: int = _setting(
        90, ("idle_client_ttl_days",), integer(1, 3_650), "... and clients idle this long"
    )
    allowed_auth_methods: frozenset[str] = _setting(
        TOKEN_ENDPOINT_AUTH_METHODS,
        ("allowed_token_endpoint_auth_methods",),
        _auth_methods,
        "the token endpoint auth methods dynamic clients may register",
        load=_load_auth_methods,
        dump=sorted,
    )
    require_pkce: bool = _setting(
        True,
        ("require_pkce",),
        boolean,
        "every code flow must use PKCE S256 (RFC 7636); public clients must regardless",
    )
    client_self_management: bool = _setting(
        True,
        ("client_self_management",),
        boolean,
        "clients may read, update and delete their own registration (RFC 7592)",
    )
    rate_limit_by_software_id: bool = _setting(
        False,
        ("rate_limit", "by_software_id"),
        boolean,
        "the rate limit's bucket is per client IP and software_id (platforms that register "
        "many clients from one egress IP)",
    )
    resource_url_prefixes: tuple[str, ...] = _setting(
        (),
        ("resource_indicators", "allowed_url_prefixes"),
        string_list(check_resource_prefix, 50),
        "URLs under these prefixes act as a resource (RFC 8707) without being registered as an "
        "API (e.g. new MCP servers); empty: only registered APIs",
        dump=list,
    )
    client_id_metadata_documents: bool = _setting(
        False,
        ("client_id_metadata_documents", "enabled"),
        boolean,
        "an https client_id names a Client ID Metadata Document the provider fetches",
    )
    client_id_metadata_hosts: tuple[str, ...] = _setting(
        (),
        ("client_id_metadata_documents", "allowed_hosts"),
        string_list(_host_name, 100),
        "hosts whose metadata documents are accepted; empty: any public host",
        dump=list,
    )
    client_id_metadata_min_cache_seconds: int = _setting(
        60,
        ("client_id_metadata_documents", "cache_ttl", "min_seconds"),
        integer(0, 86_400),
        "a fetched document is kept at least this long, whatever its HTTP caching says",
    )
    client_id_metadata_max_cache_seconds: int = _setting(
        3600,
        ("client_id_metadata_documents", "cache_ttl", "max_seconds"),
        integer(0, 604_800),
        "... and at most this long",
    )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RegistrationPolicy:
        """The policy in a tenant's settings document; settings it lacks (a document of an
        older version) take their defaults."""
        stored = settings.get(POLICY_KEY) or {}
        given: dict[str, Any] = {}
        for setting in SETTINGS:
            value = _lookup(stored, setting.path)
            if value is not None:
                given[setting.attribute] = setting.load(value)
        return cls(**given)

    def to_settings(self) -> dict[str, Any]:
        """This policy as the `dynamic_client_registration` member of a settings document."""
        return _nested((s.path, s.dump(getattr(self, s.attribute))) for s in SETTINGS)

    def metadata_policy(self) -> MetadataPolicy:
        """The limits this policy puts on the metadata of a registering client."""
        return MetadataPolicy(allowed_auth_methods=self.allowed_auth_methods)


def _nested(items: Iterable[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A nested document holding each value at its path."""
    document: dict[str, Any] = {}
    for path, value in items:
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return document


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(part)
    return document


SETTINGS: Final[tuple[Setting, ...]] = tuple(
    Setting(
        attribute=item.name,
        default=item.default,
        path=item.metadata["path"],
        check=item.metadata["check"],
        meaning=item.metadata["meaning"],
        load=item.metadata["load"],
        dump=item.metadata["dump"],
    )
    for item in fields(RegistrationPolicy)
)


def _obj(node: dict[str, Any]) -> Obj:
    return Obj({key: _obj(v) if isinstance(v, dict) else v for key, v in node.items()})


# The PATCH schema of the `dynamic_client_registration` member (`oidc_common.settings_schema`).
POLICY_SCHEMA: Final = _obj(_nested((s.path, s.check) for s in SETTINGS))
