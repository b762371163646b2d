"""Token revocation (RFC 7009) and introspection (RFC 7662), issue 22, over real HTTP against
an in-process authorize service with real MongoDB-compatible storage and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    Browser,
    add_api,
    add_client,
    add_user,
    basic_auth,
    sign_in_with_code,
    token_request,
    userinfo_request,
)

DOMAIN = "revoke.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
EMAIL = "ada@example.com"
API = "appointments:api"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        await add_api(environment, API, allow_offline_access=True)
        yield environment


async def _signed_in(env: AuthorizeEnv, client: dict[str, Any]) -> dict[str, Any]:
    """A user's tokens for `client`: code + PKCE, `openid offline_access appointments` on API."""
    scope = "openid offline_access appointments"
    browser = Browser(env.http, DOMAIN)
    body = (await sign_in_with_code(env, browser, client, EMAIL, scope=scope, audience=API)).tokens
    assert "refresh_token" in body, body
    return body


async def _post(
    env: AuthorizeEnv, path: str, data: dict[str, str], client: dict[str, Any]
) -> tuple[int, Any, dict[str, str]]:
    response = await env.http.post(
        path,
        data=data,
        headers={
            "Host": DOMAIN,
            "Authorization": basic_auth(client["client_id"], client["client_secret"]),
        },
    )
    text = await response.text()
    body = await response.json() if text else None
    return response.status, body, dict(response.headers)


async def _introspect(env: AuthorizeEnv, token: str, caller: dict[str, Any]) -> dict[str, Any]:
    status, body, headers = await _post(env, "/oauth/introspect", {"token": token}, caller)
    assert status == 200 and headers["Cache-Control"] == "no-store", body
    return dict(body)


async def _refresh(env: AuthorizeEnv, client: dict[str, Any], refresh_token: str) -> int:
    status, _ = await token_request(
        env.http,
        DOMAIN,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        (client["client_id"], client["client_secret"]),
    )
    return status


async def test_revoking_a_refresh_token_ends_the_whole_sign_in(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    tokens = await _signed_in(env, client)
    assert (await _introspect(env, tokens["refresh_token"], client))["active"] is True
    status, body, headers = await _post(
        env,
        "/oauth/revoke",
        {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        client,
    )
    assert (status, body, headers["Cache-Control"]) == (200, None, "no-store")
    assert await _refresh(env, client, tokens["refresh_token"]) == 400
    # RFC 7009 §2.1: the access tokens of the same grant die with it.
    assert (await userinfo_request(env.http, DOMAIN, tokens["access_token"]))[0] == 401
    assert await _introspect(env, tokens["access_token"], client) == {"active": False}
    assert await _introspect(env, tokens["refresh_token"], client) == {"active": False}
    # Revoking again, or a token that never existed: the same 200 (§2.2).
    for token in (tokens["refresh_token"], "no-such-token", "a.b.c"):
        assert (await _post(env, "/oauth/revoke", {"token": token}, client))[0] == 200


async def test_revoking_an_access_token_denies_it_until_it_expires(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    tokens = await _signed_in(env, client)
    active = await _introspect(env, tokens["access_token"], client)
    assert active["active"] is True and active["client_id"] == client["client_id"]
    assert active["token_type"] == "Bearer" and API in active["aud"]
    assert active["scope"] == "openid offline_access appointments" and active["iss"] == ISSUER
    status, _, _ = await _post(
        env, "/oauth/revoke", {"token": tokens["access_token"], "token_type_hint": "x"}, client
    )
    assert status == 200  # an unknown hint is ignored, not an error
    assert await _introspect(env, tokens["access_token"], client) == {"active": False}
    assert (await userinfo_request(env.http, DOMAIN, tokens["access_token"]))[0] == 401
    # Only that access token: the refresh token still works.
    assert await _refresh(env, client, tokens["refresh_token"]) == 200


async def test_another_clients_token_is_neither_revoked_nor_shown(env: AuthorizeEnv) -> None:
    owner, stranger = await add_client(env), await add_client(env)
    tokens = await _signed_in(env, owner)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        status, _, _ = await _post(env, "/oauth/revoke", {"token": token}, stranger)
        assert status == 200  # RFC 7009 §2.1: refused silently, nothing revoked
        assert await _introspect(env, token, stranger) == {"active": False}
        assert (await _introspect(env, token, owner))["active"] is True


async def test_a_resource_server_with_a_client_grant_may_introspect(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    resource_server = await add_client(env, grant_types=["client_credentials"], response_types=[])
    tokens = await _signed_in(env, client)
    assert await _introspect(env, tokens["access_token"], resource_server) == {"active": False}
    await env.db[Collections.CLIENT_GRANTS].insert_one(
        {
            "tenant_id": env.tenant.tenant_id,
            "client_id": resource_server["client_id"],
            "audience": API,
            "scope": [],
        }
    )
    seen = await _introspect(env, tokens["access_token"], resource_server)
    assert seen["active"] is True and seen["sub"] == tokens_subject(tokens)
    # A refresh token is only ever its own client's business.
    assert await _introspect(env, tokens["refresh_token"], resource_server) == {"active": False}


def tokens_subject(tokens: dict[str, Any]) -> str:
    return str(jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"])


async def test_an_id_token_is_an_unsupported_token_type(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    tokens = await _signed_in(env, client)
    status, body, _ = await _post(env, "/oauth/revoke", {"token": tokens["id_token"]}, client)
    assert (status, body["error"]) == (400, "unsupported_token_type")
    assert await _introspect(env, tokens["id_token"], client) == {"active": False}
    # Another client's ID token: the 200 of an unknown token, which confirms nothing.
    stranger = await add_client(env)
    status, body, _ = await _post(env, "/oauth/revoke", {"token": tokens["id_token"]}, stranger)
    assert (status, body) == (200, None)


async def test_introspection_needs_an_authenticated_client(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    public = await add_client(env, token_endpoint_auth_method="none")
    tokens = await _signed_in(env, client)
    response = await env.http.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"], "client_id": public["client_id"]},
        headers={"Host": DOMAIN},
    )
    assert response.status == 401 and (await response.json())["error"] == "invalid_client"
    wrong = {**client, "client_secret": "not-the-secret"}
    status, body, _ = await _post(env, "/oauth/introspect", {"token": "x"}, wrong)
    assert (status, body["error"]) == (401, "invalid_client")
    status, body, _ = await _post(env, "/oauth/introspect", {}, client)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_a_deleted_user_or_client_makes_tokens_inactive(env: AuthorizeEnv) -> None:
    client, resource_server = await add_client(env), await add_client(env)
    await env.db[Collections.CLIENT_GRANTS].insert_one(
        {
            "tenant_id": env.tenant.tenant_id,
            "client_id": resource_server["client_id"],
            "audience": API,
            "scope": [],
        }
    )
    tokens = await _signed_in(env, client)
    assert (await _introspect(env, tokens["access_token"], resource_server))["active"] is True
    await env.db[Collections.CLIENTS].delete_one({"_id": client["client_id"]})
    assert await _introspect(env, tokens["access_token"], resource_server) == {"active": False}


async def test_a_revoked_management_api_token_stops_working_at_the_management_api(
    env: AuthorizeEnv,
) -> None:
    """A third review: /oauth/revoke answered 200 and introspection said inactive, yet the
    Management API kept accepting the token until its exp."""
    management = {"client_id": env.tenant.client_id, "client_secret": env.tenant.client_secret}
    status, body = await token_request(
        env.http,
        DOMAIN,
        {"grant_type": "client_credentials", "audience": f"{ISSUER}api/v2/"},
        (management["client_id"], management["client_secret"]),
    )
    assert status == 200, body
    bearer = {"Host": DOMAIN, "Authorization": f"Bearer {body['access_token']}"}
    assert (await env.http.get("/api/v2/users", headers=bearer)).status == 200
    status, _, _ = await _post(env, "/oauth/revoke", {"token": body["access_token"]}, management)
    assert status == 200
    refused = await env.http.get("/api/v2/users", headers=bearer)
    assert refused.status == 401 and (await refused.json())["errorCode"] == "invalid_token"
