"""The Management API as a resource server: its internal key and the scopes it grants.

Every tenant's Management API is stored among its resource servers under `MANAGEMENT_API`;
its audience is the tenant's issuer + `api/v2/`.
"""

from __future__ import annotations

MANAGEMENT_API = "management-api"
"""Resource-server key of the Management API; its audience is the tenant's issuer + `api/v2/`."""

MANAGEMENT_SCOPES = (
    "read:tenant_settings",
    "update:tenant_settings",
    "read:clients",
    "update:clients",
    "delete:clients",
    "create:users",
    "read:users",
    "delete:users",
    "create:resource_servers",
    "read:resource_servers",
    "delete:resource_servers",
    "read:grants",
    "delete:grants",
)
