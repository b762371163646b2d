"""A tenant with the tenant-settings and registration services running, for registration tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from oidc_common.config import Settings
from registration_service.app import create_app as create_registration_app
from registration_service.resources import GATE
from tenant_settings_service.app import create_app as create_settings_app
from tests.support.services import serve
from tests.support.tenants import bootstrap_tenant
from tests.support.tokens import management_token
from tests.support.waiting import eventually

HOST = "acme.example"
ISSUER = f"http://{HOST}/"


@dataclass
class Dcr:
    registration: TestClient[Any, Any]
    registration_app: web.Application
    settings_client: TestClient[Any, Any]
    settings: Settings
    tenant_id: str
    management_headers: dict[str, str]

    async def patch_settings(self, body: dict[str, Any]) -> int:
        """PATCH tenant settings and wait until the registration gate holds the new version."""
        response = await self.settings_client.patch(
            "/api/v2/tenants/settings", json=body, headers=self.management_headers
        )
        assert response.status == 200, await response.text()
        version: int = (await response.json())["version"]
        gate = self.registration_app[GATE]

        async def applied() -> bool:
            snapshot = await gate.snapshot(self.tenant_id)
            return snapshot is not None and snapshot.version >= version

        assert await eventually(applied, timeout=15)
        return version

    async def set_registration(self, enabled: bool) -> int:
        return await self.patch_settings({"flags": {"enable_dynamic_client_registration": enabled}})

    async def register(
        self, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> tuple[int, Any, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        response = await self.registration.post(
            "/oidc/register",
            data=data,
            headers={"Host": HOST, "Content-Type": "application/json", **(headers or {})},
        )
        text = await response.text()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return response.status, parsed, response.headers


@contextlib.asynccontextmanager
async def dcr_stack(
    registration_settings: Settings, settings_settings: Settings
) -> AsyncIterator[Dcr]:
    tenant = await bootstrap_tenant(registration_settings, HOST)
    token = await management_token(registration_settings, tenant.tenant_id, ISSUER)
    headers = {"Host": HOST, "Authorization": f"Bearer {token}"}
    app = create_registration_app(registration_settings)
    async with serve(app) as registration, serve(create_settings_app(settings_settings)) as ts:

        async def consuming() -> bool:
            return app[GATE].consuming

        assert await eventually(consuming, timeout=15)
        yield Dcr(registration, app, ts, registration_settings, tenant.tenant_id, headers)
