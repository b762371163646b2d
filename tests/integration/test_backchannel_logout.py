"""Back-channel logout (issue 22): a signed Logout Token to each client the session signed
in to, at least once, once per client and session, under the address guard, surviving a
broker that is down at logout and a restart of the service before delivery. Real HTTP: the
authorize service in-process, a receiver on loopback, real storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from authorize_service.app import create_app
from oidc_common.config import Settings
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv
from tests.support.backchannel import LogoutReceiver as Receiver
from tests.support.services import serve, with_overrides
from tests.support.signin import (
    Browser,
    add_client,
    add_user,
    jwks_key,
    sign_in_with_code,
)
from tests.support.stack import free_port
from tests.support.tenants import bootstrap_tenant

DOMAIN = "backchannel.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
EMAIL = "ada@example.com"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    await found.stop()


def _allowing_loopback(settings: Settings) -> Settings:
    return with_overrides(settings, cimd_private_hosts=("127.0.0.1",))


async def _signed_in(env: AuthorizeEnv, browser: Browser, client: dict[str, Any]) -> str:
    """Code + PKCE for the user in `browser`; the ID token."""
    return str(
        (await sign_in_with_code(env, browser, client, EMAIL, scope="openid")).tokens["id_token"]
    )


async def _logout(browser: Browser, id_token: str) -> None:
    response = await browser.http.get(
        "/oidc/logout",
        params={"id_token_hint": id_token},
        headers={"Host": DOMAIN},
        allow_redirects=False,
    )
    assert response.status == 200 and "You are signed out" in await response.text()


async def _verified(env: AuthorizeEnv, token: str, client_id: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
    claims: dict[str, Any] = jwt.decode(
        token,
        await jwks_key(env.http, DOMAIN, token),
        algorithms=["RS256"],
        audience=client_id,
        issuer=ISSUER,
        options={"require": ["iat", "exp", "jti", "sub", "sid", "events"]},
    )
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    return claims


async def test_each_client_of_the_session_gets_one_logout_token(
    settings_for: SettingsFactory, receiver: Receiver
) -> None:
    settings = _allowing_loopback(settings_for("authorize"))
    tenant = await bootstrap_tenant(settings, DOMAIN)
    async with serve(create_app(settings)) as http:
        env = AuthorizeEnv(http, http.server.app, settings, tenant)  # type: ignore[arg-type]
        await add_user(env, EMAIL)
        browser = Browser(http, DOMAIN)
        one = await add_client(env, backchannel_logout_uri=receiver.url)
        two = await add_client(env, backchannel_logout_uri=receiver.url + "?client=2")
        silent = await add_client(env)  # no back-channel URI: nothing to send
        id_token = await _signed_in(env, browser, one)
        await _signed_in(env, browser, two)
        await _signed_in(env, browser, silent)
        sid = jwt.decode(id_token, options={"verify_signature": False})["sid"]
        await _logout(browser, id_token)
        await receiver.wait_for(2)
        await asyncio.sleep(2.5)  # a sweep later: still exactly one per client
        assert len(receiver.tokens) == 2
        audiences = set()
        for token in receiver.tokens:
            claims = jwt.decode(token, options={"verify_signature": False})
            verified = await _verified(env, token, claims["aud"])
            assert verified["sid"] == sid and verified["sub"].startswith("auth0|")
            audiences.add(verified["aud"])
        assert audiences == {one["client_id"], two["client_id"]}


async def test_a_failing_receiver_is_retried_until_it_answers(
    settings_for: SettingsFactory, receiver: Receiver
) -> None:
    settings = _allowing_loopback(settings_for("authorize"))
    tenant = await bootstrap_tenant(settings, DOMAIN)
    receiver.status = 503
    async with serve(create_app(settings)) as http:
        env = AuthorizeEnv(http, http.server.app, settings, tenant)  # type: ignore[arg-type]
        await add_user(env, EMAIL)
        browser = Browser(http, DOMAIN)
        client = await add_client(env, backchannel_logout_uri=receiver.url)
        await _logout(browser, await _signed_in(env, browser, client))
        await receiver.wait_for(1)
        receiver.status = 200
        await receiver.wait_for(2, seconds=15)  # the backoff's first retry
        [doc] = await env.db[Collections.LOGOUT_DELIVERIES].find({}).to_list()
        assert doc["delivered_at"] is not None and doc["attempts"] == 2


async def test_private_addresses_are_refused_unless_allowed(
    settings_for: SettingsFactory, receiver: Receiver
) -> None:
    settings = settings_for("authorize")  # 127.0.0.1 not allowed
    tenant = await bootstrap_tenant(settings, DOMAIN)
    async with serve(create_app(settings)) as http:
        env = AuthorizeEnv(http, http.server.app, settings, tenant)  # type: ignore[arg-type]
        await add_user(env, EMAIL)
        browser = Browser(http, DOMAIN)
        client = await add_client(env, backchannel_logout_uri=receiver.url)
        await _logout(browser, await _signed_in(env, browser, client))
        async with asyncio.timeout(10):
            while True:
                docs = await env.db[Collections.LOGOUT_DELIVERIES].find({}).to_list()
                if docs and docs[0]["attempts"] >= 1:
                    break
                await asyncio.sleep(0.05)
        assert receiver.tokens == [] and docs[0]["delivered_at"] is None
        assert "private" in docs[0]["last_error"]


async def test_delivery_survives_a_broker_outage_and_a_restart(
    settings_for: SettingsFactory,
) -> None:
    """The broker is unreachable at logout and the receiver down; the service stops before
    anything is delivered. A new service process (here: a new app) delivers once it can."""
    base = _allowing_loopback(settings_for("authorize"))
    no_broker = with_overrides(base, rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    tenant = await bootstrap_tenant(base, DOMAIN)
    receiver = Receiver()  # not started: deliveries fail for now
    async with serve(create_app(no_broker)) as http:
        env = AuthorizeEnv(http, http.server.app, no_broker, tenant)  # type: ignore[arg-type]
        await add_user(env, EMAIL)
        browser = Browser(http, DOMAIN)
        client = await add_client(env, backchannel_logout_uri=receiver.url)
        await _logout(browser, await _signed_in(env, browser, client))
        [doc] = await env.db[Collections.LOGOUT_DELIVERIES].find({}).to_list()
        assert doc["delivered_at"] is None
    await receiver.start()
    try:
        async with serve(create_app(base)) as http:
            await receiver.wait_for(1, seconds=20)
            env = AuthorizeEnv(http, http.server.app, base, tenant)  # type: ignore[arg-type]
            await _verified(env, receiver.tokens[0], client["client_id"])
            await asyncio.sleep(2.5)
            assert len(receiver.tokens) == 1
    finally:
        await receiver.stop()


async def test_a_hanging_receiver_delays_no_one_else(
    settings_for: SettingsFactory, receiver: Receiver
) -> None:
    """A second review: deliveries went one at a time, so eight clients whose receivers never
    answered held another user's Logout Token back for minutes."""
    settings = _allowing_loopback(settings_for("authorize"))
    tenant = await bootstrap_tenant(settings, DOMAIN)
    hanging = Receiver(delay=8)  # longer than a delivery waits (POST_TIMEOUT_SECONDS)
    await hanging.start()
    try:
        async with serve(create_app(settings)) as http:
            env = AuthorizeEnv(http, http.server.app, settings, tenant)  # type: ignore[arg-type]
            await add_user(env, EMAIL)
            browser = Browser(http, DOMAIN)
            slow = [await add_client(env, backchannel_logout_uri=hanging.url) for _ in range(8)]
            id_tokens = [await _signed_in(env, browser, client) for client in slow]
            await _logout(browser, id_tokens[0])  # one session, signed in to all eight
            await hanging.wait_for(8, seconds=10)  # all eight are being attempted at once
            http.session.cookie_jar.clear()
            prompt = await add_client(env, backchannel_logout_uri=receiver.url)
            await _logout(browser, await _signed_in(env, browser, prompt))
            await receiver.wait_for(1, seconds=3)  # not behind the hanging ones
    finally:
        await hanging.stop()
