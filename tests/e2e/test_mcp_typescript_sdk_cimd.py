"""The MCP TypeScript SDK's flow with a Client ID Metadata Document instead of registration
(draft-ietf-oauth-client-id-metadata-document; the SDK's `clientMetadataUrl`, SEP-991).

The client publishes its metadata at an https URL and uses that URL as its `client_id`; the
SDK does so when the provider's RFC 8414 metadata says `client_id_metadata_document_supported`.
The document is served by this test over https on 127.0.0.1 with a certificate of a test CA.
A deployment trusts neither by default (test_mcp_typescript_sdk.py shows the refusal), so this
module runs its own stack, configured as an operator would for such a host: `CIMD_CA_FILE`
names the test CA and `CIMD_PRIVATE_HOSTS` exempts `127.0.0.1` and `localhost` from the
public-address guard. The tenant allows documents from those hosts only.

The MCP servers are resources through the tenant's allowed URL prefixes (see
test_mcp_typescript_sdk.py for the server and what it checks).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.support.backing import BackingServices
from tests.support.browser import Callback
from tests.support.gateway import Edge, SignInTenant
from tests.support.mcp import (
    DocumentServer,
    McpServer,
    ca_signed_tls,
    check_authorize_url,
    check_discovery,
    check_mcp_result,
    check_refused,
    check_token_request,
    document_server,
    mcp_server,
    patch_policy,
    require_node_client,
    run_flow,
    unique_name,
    wait_for_discovery,
    wait_until_resource,
)
from tests.support.stack import gateway_stack

DOCUMENT_HOSTS = ("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def cimd_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """The test CA's certificate file and a server context with a certificate it issued."""
    return ca_signed_tls(tmp_path_factory.mktemp("cimd-ca"))


@pytest.fixture(scope="module")
def stack_processes(
    backing: BackingServices,
    tmp_path_factory: pytest.TempPathFactory,
    cimd_ca: tuple[Path, ssl.SSLContext],
) -> Iterator[tuple[int, dict[str, str], str]]:
    """This module's stack (it replaces the session's for `edge`, `tenant`...): the services
    trust the test CA and may fetch documents from the loopback hosts."""
    env = {"CIMD_CA_FILE": str(cimd_ca[0]), "CIMD_PRIVATE_HOSTS": ",".join(DOCUMENT_HOSTS)}
    with gateway_stack(backing, tmp_path_factory.mktemp("stack-cimd"), env) as stack:
        yield stack


@pytest.fixture(scope="module")
def node() -> str:
    return require_node_client()


@pytest.fixture(scope="module")
async def servers(edge: Edge, tenant: SignInTenant) -> AsyncIterator[tuple[McpServer, McpServer]]:
    """Two MCP servers, resources through the allowed URL prefixes; metadata documents
    allowed from the loopback hosts."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(mcp_server(edge))
        second = await stack.enter_async_context(mcp_server(edge))
        await patch_policy(
            edge,
            tenant.management_token,
            {
                "resource_indicators": {
                    "allowed_url_prefixes": [first.origin + "/", second.origin + "/"]
                },
                "client_id_metadata_documents": {
                    "enabled": True,
                    "allowed_hosts": list(DOCUMENT_HOSTS),
                },
            },
        )
        await wait_until_resource(edge, first.url)
        await wait_until_resource(edge, second.url)
        await wait_for_discovery(edge, "client_id_metadata_document_supported", True)
        yield first, second


@pytest.fixture
async def documents(cimd_ca: tuple[Path, ssl.SSLContext]) -> AsyncIterator[DocumentServer]:
    async with document_server(cimd_ca[1]) as server:
        yield server


async def test_metadata_document(
    edge: Edge,
    tenant: SignInTenant,
    node: str,
    servers: tuple[McpServer, McpServer],
    documents: DocumentServer,
    page: Page,
    loopback_callback: Callback,
) -> None:
    server, other = servers
    name = unique_name("sdk")
    url = documents.publish(name, loopback_callback.url)
    flow = await run_flow(
        node, server, tenant, page, loopback_callback, "mcp-cimd", client_metadata_url=url
    )
    # No registration: the document's URL is the client_id, from /authorize to the token.
    assert flow.client_id == url, flow.result["client"]
    assert not flow.client.requests("POST", f"{edge.origin}/oidc/register")
    check_discovery(flow, server, edge)
    check_authorize_url(flow, server)
    check_token_request(flow, server, edge)
    claims = check_mcp_result(flow, server)
    assert claims["azp"] == url, claims
    # The provider fetched the document (and may have kept it for the token request); the
    # consent page named the document's host as what the user is trusting, and its client.
    assert documents.fetches and set(documents.fetches) == {name}, documents.fetches
    assert "Client information published by 127.0.0.1" in flow.consent, flow.consent
    assert "MCP TypeScript SDK e2e client (metadata document)" in flow.consent, flow.consent

    await check_refused(other, flow.access_token, "a token for the other MCP server")
    await check_refused(server, tenant.management_token, "a Management API token")
    status, body, _ = await server.call(flow.access_token)
    assert status == 200, body


async def test_certificate_of_another_ca_refused(
    edge: Edge,
    servers: tuple[McpServer, McpServer],
    loopback_callback: Callback,
    tmp_path: Path,
) -> None:
    """Only the configured CA is added: a document host whose certificate another (unknown)
    CA issued is refused with an error page, as is any certificate the system does not trust.
    On `localhost`, so the host's remembered failure does not touch 127.0.0.1's documents."""
    _, untrusted = ca_signed_tls(tmp_path / "other-ca")
    async with document_server(untrusted, host="localhost") as elsewhere:
        url = elsewhere.publish(unique_name("untrusted"), loopback_callback.url)
        status, body = await edge.call(
            "GET",
            "/authorize",
            params={
                "response_type": "code",
                "client_id": url,
                "redirect_uri": loopback_callback.url,
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSjw2-cM",
                "code_challenge_method": "S256",
                "resource": servers[0].url,
            },
        )
    assert status == 400, (status, body)
    assert "certificate of localhost could not be verified" in str(body), body
    assert not loopback_callback.hits
