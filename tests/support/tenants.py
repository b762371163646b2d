"""Creating tenants for tests through the same bootstrap code the CLI uses."""

from __future__ import annotations

from oidc_common.config import Settings
from oidc_common.mongo import open_client
from tenant_settings_service.bootstrap import BootstrapResult, create_tenant


async def bootstrap_tenant(settings: Settings, domain: str) -> BootstrapResult:
    client = open_client(settings.mongodb_url)
    try:
        return await create_tenant(
            client[settings.mongodb_database], domain, settings.require_kek()
        )
    finally:
        await client.close()
