"""An authorize service in the test process, with a bootstrapped tenant (and, for the
Management API tests, a token of the tenant's and the API's error shape)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from authorize_service.app import create_app
from oidc_common.config import Settings
from oidc_common.mongo import Document
from oidc_common.service import DB
from tenant_settings_service.bootstrap import BootstrapResult

from .services import serve
from .tenants import bootstrap_tenant
from .tokens import management_token


@dataclass
class AuthorizeEnv:
    http: TestClient[web.Request, web.Application]
    app: web.Application
    settings: Settings
    tenant: BootstrapResult

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.app[DB]


E = TypeVar("E", bound=AuthorizeEnv)


@asynccontextmanager
async def authorize_env(settings: Settings, domain: str, kind: type[E]) -> AsyncIterator[E]:
    tenant = await bootstrap_tenant(settings, domain)
    app = create_app(settings)
    async with serve(app) as http:
        yield kind(http, app, settings, tenant)


class ManagementEnv(AuthorizeEnv):
    """The authorize service's Management API, called with `token` (a full-scope token of
    the tenant's once `management_env` made it)."""

    token: str = ""

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
        host: str | None = None,
        content_type: str = "application/json",
    ) -> ClientResponse:
        """`method path` as the tenant's host (or `host`), with `token` (default: the env's;
        "" sends none) and `body` as JSON, or `raw` as it is."""
        headers = {"Host": host or self.tenant.domain}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = content_type
        return await self.http.request(method, path, data=data, params=params, headers=headers)


M = TypeVar("M", bound=ManagementEnv)


@asynccontextmanager
async def management_env(settings: Settings, domain: str, kind: type[M]) -> AsyncIterator[M]:
    async with authorize_env(settings, domain, kind) as environment:
        environment.token = await management_token(
            settings, environment.tenant.tenant_id, f"http://{domain}/"
        )
        yield environment


async def expect_management_error(
    response: ClientResponse, status: int, code: str
) -> dict[str, Any]:
    """The body of a Management API error: Auth0's shape, with `status` and `code`."""
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"statusCode", "error", "message", "errorCode"}, body
    assert body["statusCode"] == status and body["errorCode"] == code, body
    assert body["message"]
    return dict(body)
