"""The tenant's registration policy, read from one settings snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oidc_common.settings_cache import SettingsSnapshot

from .rfc7591.metadata import AUTH_METHODS, MetadataPolicy


@dataclass(frozen=True)
class RegistrationPolicy:
    rate_limit_requests: int = 20
    rate_limit_window_seconds: int = 60
    max_clients: int = 1000
    unused_client_ttl_hours: int = 24
    idle_client_ttl_days: int = 90
    allowed_auth_methods: frozenset[str] = AUTH_METHODS
    require_pkce: bool = True
    client_self_management: bool = True

    @classmethod
    def from_snapshot(cls, snapshot: SettingsSnapshot) -> RegistrationPolicy:
        # Missing keys (an older settings document) fall back to the defaults above.
        raw: dict[str, Any] = snapshot.settings.get("dynamic_client_registration") or {}
        rate = raw.get("rate_limit") or {}
        default = cls()
        methods = raw.get("allowed_token_endpoint_auth_methods")
        return cls(
            rate_limit_requests=int(rate.get("requests", default.rate_limit_requests)),
            rate_limit_window_seconds=int(
                rate.get("window_seconds", default.rate_limit_window_seconds)
            ),
            max_clients=int(raw.get("max_clients", default.max_clients)),
            unused_client_ttl_hours=int(
                raw.get("unused_client_ttl_hours", default.unused_client_ttl_hours)
            ),
            idle_client_ttl_days=int(raw.get("idle_client_ttl_days", default.idle_client_ttl_days)),
            allowed_auth_methods=frozenset(methods) & AUTH_METHODS if methods else AUTH_METHODS,
            require_pkce=bool(raw.get("require_pkce", default.require_pkce)),
            client_self_management=bool(
                raw.get("client_self_management", default.client_self_management)
            ),
        )

    def metadata_policy(self) -> MetadataPolicy:
        return MetadataPolicy(allowed_auth_methods=self.allowed_auth_methods)
