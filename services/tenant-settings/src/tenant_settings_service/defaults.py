"""The default tenant settings: registration off, a conservative open-registration policy."""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_SETTINGS: dict[str, Any] = {
    "friendly_name": "",
    "picture_url": None,
    "support_email": None,
    "support_url": None,
    "default_audience": "",
    "flags": {
        # Auth0: "By default, dynamic application registration is disabled for all tenants."
        "enable_dynamic_client_registration": False,
    },
    "dynamic_client_registration": {
        # Token bucket per client IP: `requests` registrations per `window_seconds`.
        "rate_limit": {"requests": 20, "window_seconds": 60},
        # Cap on dynamically registered clients; never-used clients are evicted first.
        "max_clients": 1000,
        # Reaping: clients never used within `unused_client_ttl_hours` of registration,
        # and clients idle for longer than `idle_client_ttl_days`.
        "unused_client_ttl_hours": 24,
        "idle_client_ttl_days": 90,
        "allowed_token_endpoint_auth_methods": [
            "none",
            "client_secret_post",
            "client_secret_basic",
        ],
        # Public clients (token_endpoint_auth_method "none") must use PKCE (RFC 7636).
        "require_pkce": True,
        # RFC 7592: may a client read, update and delete its own registration?
        "client_self_management": True,
    },
}


def default_settings(friendly_name: str) -> dict[str, Any]:
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings["friendly_name"] = friendly_name
    return settings
