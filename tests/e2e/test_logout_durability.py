"""Back-channel logout survives the broker and the service (issue 22): through the nginx
gateway, the services as processes whose RabbitMQ connection goes through a proxy this test
cuts. The user signs in to two clients in Chromium; the broker is cut and their back-channel
receiver is down when the user signs out; the authorize service is stopped before anything
could be delivered, then started again with the broker back. Each client then receives
exactly one valid Logout Token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest
from playwright.async_api import Page

from tests.support.backchannel import LogoutReceiver as Receiver
from tests.support.backing import BackingServices
from tests.support.browser import Callback, landed_at, sign_in
from tests.support.gateway import Edge, pkce_pair
from tests.support.local_stack import private_stack_config
from tests.support.proxy import CuttableProxy
from tests.support.services import (
    cleanup_isolated,
    isolated_settings,
    new_tag,
    settings_env,
    with_overrides,
)
from tests.support.signin import code_form
from tests.support.stack import load_stack_module

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class BrokerCutStack:
    stack: Any
    edge: Edge
    broker: CuttableProxy


@pytest.fixture(scope="module")
async def broker_cut_stack(
    backing: BackingServices, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BrokerCutStack]:
    stack_module = load_stack_module()
    tag = new_tag()
    state: Path = tmp_path_factory.mktemp("logout-durability")
    broker = CuttableProxy.for_url(backing.rabbitmq_url)
    await broker.start()
    settings = with_overrides(
        isolated_settings(backing, "e2e", tag), rabbitmq_url=broker.url(backing.rabbitmq_url)
    )
    env = settings_env(settings)
    env.update(
        SHUTDOWN_DRAIN_SECONDS="0.2", SHUTDOWN_GRACE_SECONDS="5", CIMD_PRIVATE_HOSTS="127.0.0.1"
    )
    config = private_stack_config(stack_module, state, env, replicas=1)
    stack = stack_module.Stack(config)
    try:
        creds = await asyncio.to_thread(stack_module.demo_tenant, config)
        await asyncio.to_thread(stack.start, 60)
        async with aiohttp.ClientSession() as session:
            yield BrokerCutStack(stack, Edge(config.gateway_port, creds, session), broker)
    finally:
        await asyncio.to_thread(stack.stop)
        await broker.close()
        await cleanup_isolated(backing, tag)


async def _signed_in(
    edge: Edge, page: Page, client: dict[str, Any], callback: Callback, email: str, password: str
) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    query = {
        "client_id": client["client_id"],
        "redirect_uri": callback.url,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = f"{edge.origin}/authorize?{urlencode(query)}"
    if "oidc_session" in {c.get("name") for c in await page.context.cookies()}:
        await page.goto(url)  # signed in already: consent only
        await page.get_by_role("button", name="Allow").click()
    else:
        await sign_in(page, url, email, password, "durability")
    code = (await landed_at(page, callback))["code"]
    status, body = await edge.token(
        {
            **code_form(code, verifier, callback.url),
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
    )
    assert status == 200, body
    return body


async def test_logout_tokens_survive_a_broker_outage_and_a_restart(
    broker_cut_stack: BrokerCutStack, page: Page, loopback_callback: Callback
) -> None:
    edge, stack, broker = broker_cut_stack.edge, broker_cut_stack.stack, broker_cut_stack.broker
    tenant = await edge.sign_in_tenant()
    receiver = Receiver()  # down until after the restart
    clients = [
        await edge.register(
            {
                "client_name": name,
                "redirect_uris": [loopback_callback.url],
                "post_logout_redirect_uris": [loopback_callback.url],
                "backchannel_logout_uri": receiver.url,
                "application_type": "native",
            }
        )
        for name in ("Notes", "Diary")
    ]
    tokens = [
        await _signed_in(edge, page, c, loopback_callback, tenant.email, tenant.password)
        for c in clients
    ]
    await broker.cut()
    logout = {
        "id_token_hint": tokens[0]["id_token"],
        "post_logout_redirect_uri": loopback_callback.url,
        "state": "gone",
    }
    await page.goto(f"{edge.origin}/oidc/logout?{urlencode(logout)}")
    assert (await landed_at(page, loopback_callback))["state"] == "gone"
    # Stopped before anything could be delivered (the receiver is down besides).
    await asyncio.to_thread(stack.terminate, "authorize")
    assert await asyncio.to_thread(stack.wait_exit, "authorize") == 0
    await broker.restore()
    await receiver.start()
    try:
        await asyncio.to_thread(stack.restart, "authorize")
        await receiver.wait_for(2, seconds=30)
        await asyncio.sleep(3)  # a sweep later: still one per client
        assert len(receiver.tokens) == 2
        sid = jwt.decode(tokens[0]["id_token"], options={"verify_signature": False})["sid"]
        jwks = await edge.jwks()
        audiences = set()
        for token in receiver.tokens:
            header = jwt.get_unverified_header(token)
            audience = jwt.decode(token, options={"verify_signature": False})["aud"]
            claims = jwt.decode(
                token,
                jwks[header["kid"]].key,
                algorithms=["RS256"],
                audience=audience,
                issuer=edge.issuer,
            )
            assert claims["events"] == {EVENT: {}} and claims["sid"] == sid
            audiences.add(audience)
        assert audiences == {c["client_id"] for c in clients}
    finally:
        await receiver.stop()
