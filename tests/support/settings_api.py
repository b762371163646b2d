"""The Management API's tenant settings endpoint, served in-process for tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from oidc_common.config import Settings
from oidc_common.mongo import Collections, open_client
from tenant_settings_service.app import create_app
from tests.support.services import serve
from tests.support.tokens import management_token

URL = "/api/v2/tenants/settings"


@dataclass
class SettingsApi:
    """One tenant-settings app and a token for the tenant at `host`."""

    client: TestClient[Any, Any]
    headers: dict[str, str]
    settings: Settings
    tenant_id: str

    async def get(self) -> dict[str, Any]:
        response = await self.client.get(URL, headers=self.headers)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body

    async def patch(self, body: Any) -> tuple[int, Any]:
        response = await self.client.patch(
            URL, data=json.dumps(body), headers={**self.headers, "Content-Type": "application/json"}
        )
        return response.status, await response.json()

    async def stored(self) -> dict[str, Any]:
        """The tenant's settings document as the database holds it."""
        client = open_client(self.settings.mongodb_url)
        try:
            doc = await client[self.settings.mongodb_database][
                Collections.TENANT_SETTINGS
            ].find_one({"_id": self.tenant_id})
        finally:
            await client.close()
        assert doc is not None
        return doc


@asynccontextmanager
async def settings_api(settings: Settings, host: str, tenant_id: str) -> AsyncIterator[SettingsApi]:
    """A tenant-settings app of its own (a replica) for the tenant at `host`."""
    token = await management_token(settings, tenant_id, f"http://{host}/")
    async with serve(create_app(settings)) as client:
        yield SettingsApi(
            client, {"Host": host, "Authorization": f"Bearer {token}"}, settings, tenant_id
        )
