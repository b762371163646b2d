"""A deleted client takes nothing with it (issue 22): on `client.deleted` the authorize
service deletes the grants users gave it and revokes the refresh tokens it holds. Real
RabbitMQ, real storage, the authorize service in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from oidc_common.events import CLIENT_DELETED, Event
from oidc_common.mongo import Collections
from oidc_common.service import BROKER
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    Browser,
    add_client,
    add_user,
    sign_in_with_code,
)

DOMAIN = "deleted.example"
CALLBACK = "https://app.example.com/callback"
EMAIL = "ada@example.com"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        yield environment


async def _refresh_token(env: AuthorizeEnv, client: dict[str, str]) -> str:
    browser = Browser(env.http, DOMAIN)
    body = (
        await sign_in_with_code(env, browser, client, EMAIL, scope="openid offline_access")
    ).tokens
    assert "refresh_token" in body, body
    return str(body["refresh_token"])


async def test_a_deleted_clients_grants_and_refresh_tokens_go(env: AuthorizeEnv) -> None:
    gone, kept = await add_client(env), await add_client(env)
    await _refresh_token(env, gone)
    env.http.session.cookie_jar.clear()
    await _refresh_token(env, kept)
    tenant_id = env.tenant.tenant_id
    assert await env.app[BROKER].wait_connected(10)
    await env.app[BROKER].publish(
        Event(CLIENT_DELETED, tenant_id, {"client_ids": [gone["client_id"]], "reason": "owner"})
    )
    grants = env.db[Collections.GRANTS]
    async with asyncio.timeout(10):
        while await grants.count_documents({"client_id": gone["client_id"]}):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    tokens = env.db[Collections.REFRESH_TOKENS]
    assert await tokens.count_documents({"client_id": gone["client_id"], "revoked_at": None}) == 0
    assert await tokens.count_documents({"client_id": kept["client_id"], "revoked_at": None}) == 1
    assert await grants.count_documents({"client_id": kept["client_id"]}) == 1
