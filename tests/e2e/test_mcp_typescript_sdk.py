"""The official MCP TypeScript SDK (`@modelcontextprotocol/sdk`, pinned by
tests/e2e/mcp/package-lock.json) as an MCP client against the gateway, with an MCP server
served by this test.

The client (tests/e2e/mcp/client.mjs, under Node) knows only the MCP server's URL. The SDK's
OAuth support does the rest: the server's 401 names its protected resource metadata (RFC 9728),
which names the tenant's issuer; the SDK reads `/.well-known/oauth-authorization-server`
(RFC 8414), registers at `registration_endpoint` (RFC 7591) and builds the `/authorize` URL
(code, PKCE S256, `resource` = the server's URL, RFC 8707). That URL comes to this test, which
signs the user in and consents with Chromium; the browser lands on the client's loopback
callback (served here) and the test hands `code` and `state` back to the client, whose SDK
redeems the code (again with `resource`) and calls the MCP server (`tools/list`, `tools/call`).
The server (tests/support/mcp.py, aiohttp) accepts only tokens signed by the tenant's JWKS
with `iss` = the issuer and `aud` containing its own URL.

Two ways the tenant knows the server as a resource: an API registered with the server's URL as
its identifier (and a scope the server requires), or the registration policy's
`resource_indicators.allowed_url_prefixes` (no Management API call per server).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import jwt
import pytest
from playwright.async_api import Page

from tests.support.browser import Callback, landed_at, sign_in
from tests.support.gateway import Edge, SignInTenant, pkce_pair
from tests.support.mcp import McpServer, NodeClient, mcp_server, node_client, require_node_client
from tests.support.waiting import eventually

MCP_SCOPE = "mcp:tools"


@pytest.fixture(scope="module")
def node() -> str:
    return require_node_client()


@pytest.fixture(scope="module")
async def api_server(edge: Edge, tenant: SignInTenant) -> AsyncIterator[McpServer]:
    """An MCP server registered as an API of the tenant: identifier = its URL, one scope that
    it requires (named in its metadata's `scopes_supported`)."""
    async with mcp_server(edge, scopes=(MCP_SCOPE,)) as server:
        status, api = await edge.call(
            "POST",
            "/api/v2/resource-servers",
            headers={"Authorization": f"Bearer {tenant.management_token}"},
            json={
                "identifier": server.url,
                "name": "MCP server (registered)",
                "scopes": [{"value": MCP_SCOPE, "description": "Use the MCP server's tools"}],
                "allow_offline_access": True,
            },
        )
        assert status == 201, api
        yield server


@pytest.fixture(scope="module")
async def prefix_server(edge: Edge, tenant: SignInTenant) -> AsyncIterator[McpServer]:
    """An MCP server that is a resource only because the tenant's policy allows every URL
    under `http://127.0.0.1:{port}/` (http: loopback); it names no scopes."""
    async with mcp_server(edge) as server:
        status, body = await edge.call(
            "PATCH",
            "/api/v2/tenants/settings",
            headers={"Authorization": f"Bearer {tenant.management_token}"},
            json={
                "dynamic_client_registration": {
                    "resource_indicators": {"allowed_url_prefixes": [server.origin + "/"]}
                }
            },
        )
        assert status == 200, body
        await wait_until_resource(edge, server.url)
        yield server


async def wait_until_resource(edge: Edge, resource: str) -> None:
    """Settings reach the services asynchronously: wait until `/authorize` takes `resource`
    (the login page) instead of answering `invalid_target` (a redirect with the error)."""
    client = await edge.register(
        {
            "client_name": "Resource probe",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
        }
    )
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": "http://127.0.0.1/callback",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }

    async def accepted() -> bool:
        async with edge.session.get(
            f"{edge.base}/authorize",
            params=query,
            headers={"Host": f"localhost:{edge.port}"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            return "invalid_target" not in response.headers.get("Location", "invalid_target")

    assert await eventually(accepted, timeout=10, interval=0.1), "the prefix never applied"


async def run_flow(
    node: str,
    server: McpServer,
    tenant: SignInTenant,
    page: Page,
    callback: Callback,
    shots: str,
    client_metadata_url: str | None = None,
) -> tuple[NodeClient, dict[str, Any], dict[str, str]]:
    """The SDK's whole flow, the user signing in with Chromium when it asks; (the client's
    events, its result, the /authorize URL's parameters)."""
    async with node_client(node, server.url, callback.url, client_metadata_url) as client:
        authorize = await client.next_event("authorize")
        url = authorize["url"]
        query = dict(parse_qsl(urlsplit(url).query))
        await sign_in(page, url, tenant.email, tenant.password, shots)
        params = await landed_at(page, callback)
        assert "error" not in params, params
        await client.answer({"code": params["code"], "state": params["state"]})
        result = await client.next_event("result")
        assert await client.process.wait() == 0
        return client, result, query


def check_discovery(client: NodeClient, server: McpServer, edge: Edge) -> None:
    """The SDK found the provider the MCP way: 401 from the server, the server's metadata,
    then RFC 8414 at the issuer's origin (never needing OIDC discovery)."""
    [first, *_] = [e for e in client.events if e["event"] == "http"]
    assert first["url"] == server.url and first["status"] == 401, first
    [prm] = client.requests("GET", server.metadata_url)
    assert prm["status"] == 200, prm
    [rfc8414] = client.requests("GET", f"{edge.origin}/.well-known/oauth-authorization-server")
    assert rfc8414["status"] == 200, rfc8414
    assert not client.requests("GET", f"{edge.origin}/.well-known/openid-configuration")


def check_token_request(client: NodeClient, server: McpServer, edge: Edge, client_id: str) -> None:
    """The code redemption: public client (no secret), PKCE verifier, `resource`."""
    [token] = client.requests("POST", f"{edge.origin}/oauth/token")
    assert token["status"] == 200, token
    form = token["form"]
    assert form["grant_type"] == "authorization_code" and form["client_id"] == client_id, form
    assert form["resource"] == server.url and "client_secret" not in form, form
    assert form["code_verifier"].startswith("<"), form  # sent (its length, not its value, logged)


def check_authorize_url(query: dict[str, str], server: McpServer, client_id: str) -> None:
    assert query["response_type"] == "code" and query["client_id"] == client_id, query
    assert query["code_challenge_method"] == "S256" and query["code_challenge"], query
    assert query["resource"] == server.url, query


def check_mcp_result(result: dict[str, Any], server: McpServer) -> dict[str, Any]:
    """tools/list and tools/call went through; the claims the server saw (the tool's answer)
    and those in the SDK's token agree, `aud` contains the server's URL."""
    assert [tool["name"] for tool in result["tools"]] == ["whoami"], result
    assert result["server"]["name"] == "e2e-mcp-server", result
    [content] = result["call"]["content"]
    seen_by_server = json.loads(content["text"])
    token = result["tokens"]["access_token"]
    assert result["tokens"]["token_type"].lower() == "bearer", result["tokens"]
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert server.url in aud, claims
    assert claims["iss"] == server.edge.issuer, claims
    assert seen_by_server["sub"] == claims["sub"] and seen_by_server["aud"] == claims["aud"]
    accepted = [s for s in server.seen if s.claims is not None]
    assert {s.method for s in accepted} >= {"initialize", "tools/list", "tools/call"}, server.seen
    return claims


async def check_refused(server: McpServer, token: str, why: str) -> None:
    """401 with the challenge that sends a client to the server's metadata."""
    status, body, challenge = await server.call(token)
    assert status == 401 and body["error"] == "invalid_token", (why, body)
    assert challenge.startswith(f'Bearer resource_metadata="{server.metadata_url}"'), challenge


async def test_registered_api(
    edge: Edge,
    tenant: SignInTenant,
    node: str,
    api_server: McpServer,
    prefix_server: McpServer,
    page: Page,
    loopback_callback: Callback,
) -> None:
    client, result, query = await run_flow(
        node, api_server, tenant, page, loopback_callback, "mcp-registered-api"
    )
    registered = result["client"]
    client_id = registered["client_id"]
    check_discovery(client, api_server, edge)
    [registration] = client.requests("POST", f"{edge.origin}/oidc/register")
    assert registration["status"] == 201, registration
    # The server's `scopes_supported` is what the SDK registers with and asks for.
    assert registration["json"]["scope"] == MCP_SCOPE, registration
    assert registration["json"]["redirect_uris"] == [loopback_callback.url], registration
    check_authorize_url(query, api_server, client_id)
    assert query["scope"] == MCP_SCOPE, query
    check_token_request(client, api_server, edge, client_id)
    claims = check_mcp_result(result, api_server)
    assert claims["scope"].split() == [MCP_SCOPE] and claims["azp"] == client_id, claims

    # Only tokens for this server: not one for another resource of the same tenant, signed
    # by the same key (the other MCP server, the Management API), nor none at all.
    token = result["tokens"]["access_token"]
    await check_refused(prefix_server, token, "a token for the registered server")
    await check_refused(api_server, tenant.management_token, "a Management API token")
    status, _, challenge = await api_server.call(None)
    assert status == 401 and challenge.startswith("Bearer resource_metadata="), challenge
    # ... and the token still works where it belongs.
    status, body, _ = await api_server.call(token)
    assert status == 200 and body["result"]["tools"][0]["name"] == "whoami", body


async def test_allowed_url_prefix(
    edge: Edge,
    tenant: SignInTenant,
    node: str,
    api_server: McpServer,
    prefix_server: McpServer,
    page: Page,
    loopback_callback: Callback,
) -> None:
    client, result, query = await run_flow(
        node, prefix_server, tenant, page, loopback_callback, "mcp-allowed-prefix"
    )
    client_id = result["client"]["client_id"]
    check_discovery(client, prefix_server, edge)
    [registration] = client.requests("POST", f"{edge.origin}/oidc/register")
    assert registration["status"] == 201, registration
    check_authorize_url(query, prefix_server, client_id)
    check_token_request(client, prefix_server, edge, client_id)
    claims = check_mcp_result(result, prefix_server)
    assert claims["azp"] == client_id, claims

    token = result["tokens"]["access_token"]
    await check_refused(api_server, token, "a token for the prefix server")
    status, body, _ = await prefix_server.call(token)
    assert status == 200, body
