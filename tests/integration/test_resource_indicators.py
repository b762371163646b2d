"""Agents and MCP clients (issue 12): RFC 8414 metadata and RFC 8707 resource indicators at
`/authorize` and `/oauth/token`, over real HTTP against an in-process authorize service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from authorize_service.resources import CODES, TENANT_SETTINGS, USERS
from authorize_service.tokens.authorization_codes import CodeGrant
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    Browser,
    add_api,
    add_client,
    add_user,
    code_form,
    jwks_key,
    pkce_pair,
    token_request,
)

DOMAIN = "agents.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
MCP = "https://mcp.example.com/mcp"
EMAIL = "agent-owner@example.com"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        await add_api(
            environment,
            MCP,
            name="Notes MCP server",
            scopes=[("notes:read", "Read notes")],
            allow_offline_access=True,
        )
        yield environment


@pytest.fixture
def browser(env: AuthorizeEnv) -> Browser:
    return Browser(env.http, DOMAIN)


async def set_resource_prefixes(env: AuthorizeEnv, prefixes: list[str]) -> None:
    """The tenant's policy as a PATCH would leave it (stored, cache dropped)."""
    tenant_id = env.tenant.tenant_id
    await env.db[Collections.TENANT_SETTINGS].update_one(
        {"_id": tenant_id},
        {
            "$set": {
                "settings.dynamic_client_registration.resource_indicators.allowed_url_prefixes": prefixes
            },
            "$inc": {"version": 1},
        },
    )
    cache = env.app[TENANT_SETTINGS]
    await env.app[TENANT_SETTINGS]._redis.delete(cache.key(tenant_id))


async def token(
    env: AuthorizeEnv, data: dict[str, str], auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    return await token_request(env.http, DOMAIN, data, auth)


async def authorize(browser: Browser, client: dict[str, Any], **params: str) -> Any:
    verifier, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        state="st",
        code_challenge=challenge,
        code_challenge_method="S256",
        **params,
    )
    if landing.page is not None and "Sign in" in landing.page:
        landing = await browser.login(landing, EMAIL)
    if landing.page is not None and "Authorize application" in landing.page:
        consent_page = landing.page
        landing = await browser.submit(landing, action="allow")
        landing.page = consent_page
    return landing, verifier


async def test_rfc8414_document_equals_oidc_discovery(env: AuthorizeEnv) -> None:
    oidc = await env.http.get("/.well-known/openid-configuration", headers={"Host": DOMAIN})
    oauth = await env.http.get("/.well-known/oauth-authorization-server", headers={"Host": DOMAIN})
    assert oauth.status == 200 and await oauth.json() == await oidc.json()
    assert oauth.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age=" in oauth.headers["Cache-Control"]
    assert (await oauth.json())["issuer"] == ISSUER


async def test_resource_at_authorize_and_token_sets_the_audience(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(
        env,
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        software_id="agent-kit",
        software_version="2.1",
    )
    landing, verifier = await authorize(
        browser, client, resource=MCP, scope="openid notes:read offline_access", prompt="consent"
    )
    assert "Software: agent-kit 2.1" in landing.page and "Notes MCP server" in landing.page
    code = landing.params["code"]
    form = code_form(code, verifier, CALLBACK, client_id=client["client_id"], resource=MCP)
    status, body = await token(env, form)
    assert status == 200, body
    claims = jwt.decode(
        body["access_token"],
        await jwks_key(env.http, DOMAIN, body["access_token"]),
        algorithms=["RS256"],
        audience=MCP,
        issuer=ISSUER,
    )
    assert MCP in claims["aud"] and claims["scope"] == "openid notes:read offline_access"
    # A refresh may keep the resource, never name another (RFC 8707 §2.2).
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": client["client_id"],
    }
    status, wider = await token(env, {**refresh, "resource": "https://other.example.com/mcp"})
    assert status == 400 and wider["error"] == "invalid_target"
    # ... and a refused attempt does not spend the token.
    status, same = await token(env, {**refresh, "resource": MCP})
    assert status == 200 and same["refresh_token"] != body["refresh_token"], same
    status, wider_scope = await token(
        env, {**refresh, "refresh_token": same["refresh_token"], "scope": "openid notes:write"}
    )
    assert status == 400 and wider_scope["error"] == "invalid_scope"
    status, narrower = await token(
        env, {**refresh, "refresh_token": same["refresh_token"], "scope": "openid offline_access"}
    )
    assert status == 200 and narrower["scope"] == "openid offline_access", narrower


async def test_code_redeemed_for_another_resource_is_invalid_target(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(
        env, token_endpoint_auth_method="none", grant_types=["authorization_code"]
    )
    landing, verifier = await authorize(browser, client, resource=MCP, scope="openid")
    status, body = await token(
        env,
        code_form(
            landing.params["code"],
            verifier,
            CALLBACK,
            client_id=client["client_id"],
            resource="https://mcp.example.com/other",
        ),
    )
    assert status == 400 and body["error"] == "invalid_target", body


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"resource": "https://unknown.example.com/mcp"}, "invalid_target"),
        ({"resource": f"{MCP}#frag"}, "invalid_target"),
        ({"resource": "not a uri"}, "invalid_target"),
        ({"resource": "relative/path"}, "invalid_target"),
        ({"resource": MCP, "audience": "appointments:api"}, "invalid_request"),
    ],
)
async def test_bad_resources_go_back_to_the_client(
    env: AuthorizeEnv, browser: Browser, params: dict[str, str], error: str
) -> None:
    client = await add_client(env)
    landing, _ = await authorize(browser, client, scope="openid", **params)
    assert landing.url is not None and landing.params["error"] == error, landing
    assert landing.params["state"] == "st" and landing.params["iss"] == ISSUER


async def test_two_resources(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env)
    _verifier, challenge = pkce_pair()
    base = f"/authorize?client_id={client['client_id']}&redirect_uri={CALLBACK}&response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=openid"
    different = await browser.go("GET", f"{base}&resource={MCP}&resource=https://mcp.example.com/x")
    assert different.params["error"] == "invalid_target"
    same = await browser.go("GET", f"{base}&resource={MCP}&resource={MCP}")
    assert same.page is not None and "Sign in" in same.page


async def test_allowed_prefixes_let_unregistered_urls_be_resources(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    target = "https://tools.example.net/servers/files/mcp"
    landing, _ = await authorize(browser, client, scope="openid files:write", resource=target)
    assert landing.params["error"] == "invalid_target"  # off by default
    await set_resource_prefixes(env, ["https://tools.example.net/servers/"])
    for outside in (
        "https://tools.example.net/serversX/mcp",
        "https://tools.example.net.evil/servers/a",
        "http://tools.example.net/servers/a",
        "https://tools.example.net:8443/servers/a",
    ):
        landing, _ = await authorize(browser, client, scope="openid", resource=outside)
        assert landing.params["error"] == "invalid_target", outside
    landing, verifier = await authorize(
        browser, client, scope="openid files:write", resource=target
    )
    assert target in landing.page and "files:write" in landing.page
    status, body = await token(
        env,
        code_form(landing.params["code"], verifier, CALLBACK),
        (client["client_id"], client["client_secret"]),
    )
    assert status == 200 and body["scope"] == "openid files:write"
    claims = jwt.decode(
        body["access_token"],
        await jwks_key(env.http, DOMAIN, body["access_token"]),
        algorithms=["RS256"],
        audience=target,
        issuer=ISSUER,
    )
    assert claims["aud"][0] == target


async def test_client_credentials_with_resource(env: AuthorizeEnv) -> None:
    client = await add_client(env, grant_types=["client_credentials"], response_types=[])
    auth = (client["client_id"], client["client_secret"])
    status, body = await token(env, {"grant_type": "client_credentials", "resource": MCP}, auth)
    assert status == 400 and body["error"] == "invalid_target"  # no client grant on it
    await env.db[Collections.CLIENT_GRANTS].insert_one(
        {
            "tenant_id": env.tenant.tenant_id,
            "client_id": client["client_id"],
            "audience": MCP,
            "scope": ["notes:read"],
        }
    )
    status, body = await token(env, {"grant_type": "client_credentials", "resource": MCP}, auth)
    assert status == 200, body
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["aud"] == MCP
    status, body = await token(
        env, {"grant_type": "client_credentials", "resource": MCP, "audience": "x:api"}, auth
    )
    assert status == 400 and body["error"] == "invalid_request"
    status, body = await token(
        env, {"grant_type": "client_credentials", "resource": "https://unknown.example/"}, auth
    )
    assert status == 400 and body["error"] == "invalid_target"


# Issue 21, point 1: a prefix covering the tenant's own origin once let any user's token carry
# the Management API audience and whatever Management API scopes were asked for.
MANAGEMENT_AUDIENCE = f"{ISSUER}api/v2/"
ESCALATION_SCOPE = "openid create:users update:tenant_settings read:clients"


async def test_nothing_on_the_tenants_own_origin_is_a_prefix_resource(
    env: AuthorizeEnv, browser: Browser
) -> None:
    # Written straight into the database, as a PATCH before the fix could leave it.
    await set_resource_prefixes(env, [ISSUER, "http://agents.example:8080/"])
    client = await add_client(env)
    for resource in (MANAGEMENT_AUDIENCE, f"{ISSUER}userinfo", f"{ISSUER}anything/mcp"):
        landing, _ = await authorize(browser, client, scope=ESCALATION_SCOPE, resource=resource)
        assert landing.url is not None, resource
        assert landing.params["error"] == "invalid_target", (resource, landing.params)
        assert "own origin" in landing.params["error_description"]
    # Auth0's `audience` names the Management API no better.
    landing, _ = await authorize(
        browser, client, scope=ESCALATION_SCOPE, audience=MANAGEMENT_AUDIENCE
    )
    assert landing.params["error"] == "access_denied"


async def test_a_code_for_the_tenants_own_origin_is_refused_at_the_token_endpoint(
    env: AuthorizeEnv,
) -> None:
    # A code issued before the fix, for the Management API audience: refused at redemption.
    client = await add_client(env)
    user = await env.app[USERS].find_by_email(env.tenant.tenant_id, EMAIL)
    assert user is not None
    verifier, challenge = pkce_pair()
    code = await env.app[CODES].issue(
        CodeGrant(
            tenant_id=env.tenant.tenant_id,
            client_id=client["client_id"],
            redirect_uri=CALLBACK,
            code_challenge=challenge,
            user_id=user.user_id,
            scopes=ESCALATION_SCOPE.split(),
            audience=MANAGEMENT_AUDIENCE,
            nonce=None,
            auth_time=int(time.time()),
        )
    )
    status, body = await token(
        env, code_form(code, verifier, CALLBACK), (client["client_id"], client["client_secret"])
    )
    assert (status, body["error"]) == (400, "invalid_target"), body
    assert "access_token" not in body


async def test_prefix_resources_never_carry_management_api_permission_names(
    env: AuthorizeEnv, browser: Browser
) -> None:
    target = "https://tools.example.net/servers/files/mcp"
    await set_resource_prefixes(env, ["https://tools.example.net/servers/"])
    client = await add_client(env)
    landing, verifier = await authorize(
        browser, client, scope=f"{ESCALATION_SCOPE} files:write delete:users", resource=target
    )
    status, body = await token(
        env,
        code_form(landing.params["code"], verifier, CALLBACK),
        (client["client_id"], client["client_secret"]),
    )
    assert status == 200 and body["scope"] == "openid files:write", body
