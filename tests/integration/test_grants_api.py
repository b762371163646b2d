"""`/api/v2/grants` (issue 22): what users allowed third-party clients, listed and taken back
in Auth0's shape; taking a grant back ends the tokens issued under it and asks for consent
again. Real HTTP against an in-process authorize service and real storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.support.authorize import ManagementEnv, expect_management_error, management_env
from tests.support.signin import (
    Browser,
    add_api,
    add_client,
    add_user,
    sign_in_with_code,
    token_request,
    userinfo_request,
)
from tests.support.tokens import management_token

DOMAIN = "grants.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
API = "appointments:api"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[ManagementEnv]:
    async with management_env(settings_for("authorize"), DOMAIN, ManagementEnv) as environment:
        await add_api(environment, API, allow_offline_access=True)
        yield environment


async def _sign_in(
    env: ManagementEnv, client: dict[str, Any], email: str, **params: str
) -> tuple[Browser, dict[str, Any], str | None]:
    """Code + PKCE for `email` at `client`; (the browser, the tokens, the consent page seen)."""
    env.http.session.cookie_jar.clear()  # a fresh browser: no one signed in yet
    browser = Browser(env.http, DOMAIN)
    signed_in = await sign_in_with_code(env, browser, client, email, **params)
    return browser, signed_in.tokens, signed_in.consent_page


async def _grants(env: ManagementEnv, **query: str) -> Any:
    response = await env.call("GET", "/api/v2/grants", params=query)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_grants_are_listed_filtered_and_paged(env: ManagementEnv) -> None:
    ada, bob = await add_user(env, "ada@example.com"), await add_user(env, "bob@example.com")
    notes, diary = await add_client(env), await add_client(env)
    await _sign_in(env, notes, "ada@example.com", scope="openid appointments", audience=API)
    await _sign_in(env, notes, "ada@example.com", scope="openid email")
    await _sign_in(env, diary, "bob@example.com", scope="openid")
    every = await _grants(env)
    assert len(every) == 3
    first = every[0]
    assert set(first) == {"id", "clientID", "user_id", "audience", "scope"}
    assert first == {
        "id": first["id"],
        "clientID": notes["client_id"],
        "user_id": ada.user_id,
        "audience": API,
        "scope": ["appointments", "openid"],
    }
    assert first["id"].startswith("cgr_")
    # A sign-in without an API shows the tenant's /userinfo as its audience, as Auth0 does.
    assert every[1]["audience"] == f"{ISSUER}userinfo"
    assert [g["user_id"] for g in await _grants(env, user_id=bob.user_id)] == [bob.user_id]
    assert len(await _grants(env, client_id=notes["client_id"])) == 2
    assert len(await _grants(env, audience=f"{ISSUER}userinfo")) == 2
    paged = await _grants(env, per_page="2", page="1", include_totals="true")
    assert (paged["start"], paged["limit"], paged["length"], paged["total"]) == (2, 2, 1, 3)
    assert paged["grants"][0]["user_id"] == bob.user_id
    for bad in ({"per_page": "0"}, {"page": "x"}, {"user_id": ""}, {"include_totals": "yes"}):
        response = await env.call("GET", "/api/v2/grants", params=bad)
        await expect_management_error(response, 400, "invalid_query_string")


async def test_deleting_a_grant_ends_its_tokens_and_asks_again(env: ManagementEnv) -> None:
    user = await add_user(env, "ada@example.com")
    client = await add_client(env)
    scope = "openid offline_access appointments"
    _, tokens, consent = await _sign_in(env, client, "ada@example.com", scope=scope, audience=API)
    assert consent is not None
    [grant] = await _grants(env, user_id=user.user_id)
    response = await env.call("DELETE", f"/api/v2/grants/{grant['id']}")
    assert response.status == 204 and await response.read() == b""
    assert await _grants(env) == []
    # The refresh token issued under it is dead, so is the access token where it is checked.
    status, body = await token_request(
        env.http,
        DOMAIN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        (client["client_id"], client["client_secret"]),
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert (await userinfo_request(env.http, DOMAIN, tokens["access_token"]))[0] == 401
    # The next sign-in asks for consent again, and its new tokens work.
    _, fresh, consent = await _sign_in(env, client, "ada@example.com", scope=scope, audience=API)
    assert consent is not None
    assert (await userinfo_request(env.http, DOMAIN, fresh["access_token"]))[0] == 200
    response = await env.call("DELETE", f"/api/v2/grants/{grant['id']}")
    await expect_management_error(response, 404, "inexistent_grant")


async def test_deleting_a_users_grants(env: ManagementEnv) -> None:
    ada, bob = await add_user(env, "ada@example.com"), await add_user(env, "bob@example.com")
    one, two = await add_client(env), await add_client(env)
    for client in (one, two):
        await _sign_in(env, client, "ada@example.com", scope="openid")
    await _sign_in(env, one, "bob@example.com", scope="openid")
    response = await env.call("DELETE", "/api/v2/grants", params={"user_id": ada.user_id})
    assert response.status == 204
    assert [g["user_id"] for g in await _grants(env)] == [bob.user_id]
    response = await env.call("DELETE", "/api/v2/grants")
    await expect_management_error(response, 400, "invalid_query_string")
    # A repeated filter is refused, never read as its first value.
    response = await env.call("DELETE", f"/api/v2/grants?user_id={bob.user_id}&user_id=x")
    await expect_management_error(response, 400, "invalid_query_string")
    assert [g["user_id"] for g in await _grants(env)] == [bob.user_id]


async def test_grants_need_their_scopes(env: ManagementEnv) -> None:
    reader = await management_token(
        env.settings, env.tenant.tenant_id, ISSUER, scopes=("read:grants",)
    )
    assert (await env.call("GET", "/api/v2/grants", token=reader)).status == 200
    response = await env.call("DELETE", "/api/v2/grants/cgr_x", token=reader)
    await expect_management_error(response, 403, "insufficient_scope")
    response = await env.call("GET", "/api/v2/grants", token="")
    assert response.status == 401
