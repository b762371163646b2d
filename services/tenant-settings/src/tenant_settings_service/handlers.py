"""`GET` and `PATCH /api/v2/tenants/settings` (Auth0 Management API shape)."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

from aiohttp import web

from oidc_common.errors import ManagementApiError, json_response
from oidc_common.json_body import read_json_body
from oidc_common.locks import LockBusy
from oidc_common.management_auth import requires_scope
from oidc_common.tenancy import ORIGIN, TENANT

from .patch import SettingsValidationError, check_prefixes_off_origin
from .repository import ConcurrentUpdate, SettingsNotFound, StoredSettings
from .resources import PUBLISHER, REPOSITORY

READ_ONLY_FIELDS = frozenset({"version"})


def _bad_body(message: str) -> ManagementApiError:
    return ManagementApiError(400, message, "invalid_body")


def _fail(status: int, message: str) -> NoReturn:
    # Auth0 answers every unreadable body with 400 invalid_body.
    raise _bad_body(message if status == 400 else f"Request body must be JSON ({message})")


def _representation(stored: StoredSettings) -> dict[str, Any]:
    return {**stored.settings, "version": stored.version}


@requires_scope("read:tenant_settings")
async def get_settings(request: web.Request) -> web.Response:
    try:
        stored = await request.app[REPOSITORY].get(request[TENANT].id)
    except SettingsNotFound as exc:
        raise ManagementApiError(404, "Tenant settings not found", "inexistent_tenant") from exc
    return json_response(_representation(stored))


@requires_scope("update:tenant_settings")
async def patch_settings(request: web.Request) -> web.Response:
    body = await read_json_body(request, _fail)
    if not isinstance(body, dict):
        raise _bad_body("Request body must be a JSON object")
    for field in READ_ONLY_FIELDS & body.keys():
        raise _bad_body(f"Payload validation error: '{field}' is read-only")
    try:
        check_prefixes_off_origin(body, request[ORIGIN].issuer)
    except SettingsValidationError as exc:
        raise _bad_body(f"Payload validation error: {exc}") from exc
    publisher = request.app[PUBLISHER]
    repository = request.app[REPOSITORY]
    tenant_id = request[TENANT].id
    # Without a remembered copy to try first, the current settings are read while the lock
    # is taken: one round trip less before the change reaches the replicas (the write is
    # conditional on the version read).
    read = (
        None
        if repository.remembers(tenant_id)
        else asyncio.ensure_future(repository.get(tenant_id))
    )
    try:
        async with publisher.lock(tenant_id):
            stored, changed = await repository.update(tenant_id, body, read=read)
            if changed:
                await publisher.publish(stored)
    except SettingsValidationError as exc:
        raise _bad_body(f"Payload validation error: {exc}") from exc
    except SettingsNotFound as exc:
        raise ManagementApiError(404, "Tenant settings not found", "inexistent_tenant") from exc
    except (ConcurrentUpdate, LockBusy) as exc:
        raise ManagementApiError(409, "Concurrent update, retry", "conflict") from exc
    finally:
        if read is not None:
            if not read.done():
                read.cancel()
            elif not read.cancelled():
                read.exception()  # retrieved: a read nobody awaited (lock refused) logs nothing
    return json_response(_representation(stored))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v2/tenants/settings", get_settings, allow_head=False),
        web.patch("/api/v2/tenants/settings", patch_settings),
    ]
