"""An authorize service in the test process, with a bootstrapped tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from authorize_service.app import create_app
from oidc_common.config import Settings
from oidc_common.mongo import Document
from oidc_common.service import DB
from tenant_settings_service.bootstrap import BootstrapResult

from .services import serve
from .tenants import bootstrap_tenant


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
