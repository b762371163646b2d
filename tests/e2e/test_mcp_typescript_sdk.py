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

This module runs on the session's stack, configured as a deployment is by default: the
Client ID Metadata Document flow is refused there (a document on 127.0.0.1 is never fetched);
test_mcp_typescript_sdk_cimd.py runs it on a stack that trusts a test CA and relaxes the
address guard for 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.async_api import Page

from tests.support.browser import Callback
from tests.support.gateway import Edge, SignInTenant
from tests.support.mcp import (
    McpServer,
    ca_signed_tls,
    check_authorize_url,
    check_discovery,
    check_mcp_result,
    check_refused,
    check_token_request,
    current_policy,
    document_server,
    mcp_server,
    node_client,
    patch_policy,
    require_node_client,
    run_flow,
    unique_name,
    wait_for_discovery,
    wait_until_resource,
)

MCP_SCOPE = "mcp:tools"
SOFTWARE = "e2e-mcp-typescript-sdk"  # the client's software_id, shown on the consent page


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
    under `http://127.0.0.1:{port}/` (http: loopback); it names no scopes. The policy is put
    back afterwards (the tenant is shared by the session's e2e modules)."""
    before = (await current_policy(edge, tenant.management_token)).get("resource_indicators")
    async with mcp_server(edge) as server:
        prefixes = {"allowed_url_prefixes": [server.origin + "/"]}
        await patch_policy(edge, tenant.management_token, {"resource_indicators": prefixes})
        try:
            await wait_until_resource(edge, server.url)
            yield server
        finally:
            restore = before or {"allowed_url_prefixes": []}
            await patch_policy(edge, tenant.management_token, {"resource_indicators": restore})


async def test_registered_api(
    edge: Edge,
    tenant: SignInTenant,
    node: str,
    api_server: McpServer,
    prefix_server: McpServer,
    page: Page,
    loopback_callback: Callback,
) -> None:
    flow = await run_flow(node, api_server, tenant, page, loopback_callback, "mcp-registered-api")
    check_discovery(flow, api_server, edge)
    [registration] = flow.client.requests("POST", f"{edge.origin}/oidc/register")
    assert registration["status"] == 201, registration
    # The server's `scopes_supported` is what the SDK registers with and asks for.
    assert registration["json"]["scope"] == MCP_SCOPE, registration
    assert registration["json"]["redirect_uris"] == [loopback_callback.url], registration
    check_authorize_url(flow, api_server)
    assert flow.query["scope"] == MCP_SCOPE, flow.query
    # The user saw the API by name, the scope, and the client's software_id.
    for shown in ("MCP server (registered)", MCP_SCOPE, SOFTWARE):
        assert shown in flow.consent, flow.consent
    check_token_request(flow, api_server, edge)
    claims = check_mcp_result(flow, api_server)
    assert claims["scope"].split() == [MCP_SCOPE], claims

    # Only tokens for this server: not one for another resource of the same tenant, signed
    # by the same key (the other MCP server, the Management API), nor none at all.
    await check_refused(prefix_server, flow.access_token, "a token for the registered server")
    await check_refused(api_server, tenant.management_token, "a Management API token")
    await check_refused(api_server, None, "no token")
    # ... and the token still works where it belongs.
    status, body, _ = await api_server.call(flow.access_token)
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
    flow = await run_flow(
        node, prefix_server, tenant, page, loopback_callback, "mcp-allowed-prefix"
    )
    check_discovery(flow, prefix_server, edge)
    [registration] = flow.client.requests("POST", f"{edge.origin}/oidc/register")
    assert registration["status"] == 201, registration
    check_authorize_url(flow, prefix_server)
    assert SOFTWARE in flow.consent, flow.consent
    check_token_request(flow, prefix_server, edge)
    check_mcp_result(flow, prefix_server)

    await check_refused(api_server, flow.access_token, "a token for the prefix server")
    status, body, _ = await prefix_server.call(flow.access_token)
    assert status == 200, body


@pytest.fixture
async def cimd_enabled(edge: Edge, tenant: SignInTenant) -> AsyncIterator[None]:
    """The tenant allows metadata documents from 127.0.0.1 (as an operator might try on this
    default deployment); put back afterwards."""
    before = (await current_policy(edge, tenant.management_token)).get(
        "client_id_metadata_documents"
    )
    policy = {"enabled": True, "allowed_hosts": ["127.0.0.1"]}
    await patch_policy(edge, tenant.management_token, {"client_id_metadata_documents": policy})
    try:
        await wait_for_discovery(edge, "client_id_metadata_document_supported", True)
        yield
    finally:
        restore = before or {"enabled": False, "allowed_hosts": []}
        await patch_policy(edge, tenant.management_token, {"client_id_metadata_documents": restore})
        await wait_for_discovery(edge, "client_id_metadata_document_supported", None)


async def test_metadata_document_on_loopback_refused_by_default(
    edge: Edge,
    tenant: SignInTenant,
    node: str,
    prefix_server: McpServer,
    cimd_enabled: None,
    page: Page,
    loopback_callback: Callback,
    tmp_path: Path,
) -> None:
    """Without CIMD_PRIVATE_HOSTS the address guard holds even when the tenant allows the
    host: the SDK uses its document URL as client_id (the provider advertises
    `client_id_metadata_document_supported`), and the user gets an error page; the document
    is never fetched. (Without CIMD_CA_FILE its certificate would not be trusted either.)"""
    _, tls = ca_signed_tls(tmp_path / "ca")
    async with document_server(tls) as documents:
        url = documents.publish(unique_name("refused"), loopback_callback.url)
        async with node_client(node, prefix_server.url, loopback_callback.url, url) as client:
            authorize = await client.next_event("authorize")
            assert not client.requests("POST", f"{edge.origin}/oidc/register")
            assert dict(parse_qsl(urlsplit(authorize["url"]).query))["client_id"] == url
            response = await page.goto(authorize["url"])
            assert response is not None and response.status == 400, response
            text = await page.locator("body").inner_text()
            assert "private, loopback, link-local" in text and "127.0.0.1" in text, text
        assert documents.fetches == [], documents.fetches
        assert not loopback_callback.hits
