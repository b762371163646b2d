"""MCP test equipment: a small MCP server (Streamable HTTP, JSON responses, served by the test
on 127.0.0.1) that accepts only this provider's access tokens for itself, the MCP client of
tests/e2e/mcp/ (the official MCP TypeScript SDK under Node) as a subprocess, and the client's
Client ID Metadata Documents served over https by the test with a certificate of a test CA.

The server is what the MCP authorization rules ask of one (MCP spec 2025-06-18 and later,
"Authorization"): it publishes its protected resource metadata (RFC 9728) naming the provider's
issuer, and answers a request without an acceptable bearer token with 401 and
`WWW-Authenticate: Bearer resource_metadata="..."`. Acceptable: RS256 signature by a key of
the provider's JWKS, `iss` the issuer, `aud` containing the server's own URL, not expired
(and the scopes the server names, when it names any).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import jwt
import pytest
from aiohttp import web
from playwright.async_api import Page

from .browser import SCREENSHOTS, Callback, check_page_headers, landed_at, screenshot, serve
from .cimd import make_pki
from .gateway import Edge, SignInTenant, pkce_pair
from .waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "tests" / "e2e" / "mcp"
INSTALL = ROOT / "deploy" / "local" / "npm_ci_once.sh"
NODE_WAIT = 60.0  # seconds: each line the test waits for from the Node client
ANSWER_WAIT = 90  # seconds: how long the Node client waits for the redirect's parameters


def require_node_client() -> str:
    """The `node` executable, with the client's dependencies installed from package-lock.json
    (deploy/local/npm_ci_once.sh: `npm ci` once per lock file). A failure, never a skip,
    without Node/npm."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm not found: the MCP TypeScript SDK test runs the official SDK under "
            "Node.js 20+ (install Node.js with npm, e.g. `apt-get install nodejs npm`; "
            "`make test` then installs the SDK with `npm ci` in tests/e2e/mcp).",
            pytrace=False,
        )
    try:
        subprocess.run(
            [str(INSTALL), str(CLIENT_DIR), "mcp-client", "the MCP TypeScript SDK test"],
            check=True,
            timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"npm ci in tests/e2e/mcp failed: {exc}", pytrace=False)
    return node


@dataclass
class Seen:
    """One request that reached the MCP endpoint: the JSON-RPC method (None: refused before
    reading it), the HTTP status answered, the token's claims when accepted."""

    method: str | None
    status: int
    claims: dict[str, Any] | None = None


class McpServer:
    """An MCP server with one tool, `whoami`, which answers the caller's token claims."""

    def __init__(self, edge: Edge, scopes: tuple[str, ...] = ()) -> None:
        self.edge = edge
        self.scopes = scopes
        self.origin = ""
        self.keys: jwt.PyJWKSet | None = None
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        """The server's URL: the MCP endpoint, and the resource it names in its metadata."""
        return f"{self.origin}/mcp"

    @property
    def metadata_url(self) -> str:
        """RFC 9728 §3.1: the well-known segment inserted before the resource's path."""
        return f"{self.origin}/.well-known/oauth-protected-resource/mcp"

    def metadata(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "resource": self.url,
            "authorization_servers": [self.edge.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "e2e MCP server",
        }
        if self.scopes:
            document["scopes_supported"] = list(self.scopes)
        return document

    def _challenge(self, error: str | None = None) -> web.HTTPUnauthorized:
        challenge = f'Bearer resource_metadata="{self.metadata_url}"'
        if error is not None:
            challenge += f', error="{error}"'
        if self.scopes:
            challenge += f', scope="{" ".join(self.scopes)}"'
        return web.HTTPUnauthorized(
            headers={"WWW-Authenticate": challenge},
            text=json.dumps({"error": error or "invalid_request"}),
            content_type="application/json",
        )

    async def _key(self, kid: str) -> Any:
        if self.keys is None or kid not in {k.key_id for k in self.keys.keys}:
            self.keys = await self.edge.jwks()
        return self.keys[kid].key

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or jwt.InvalidTokenError (KeyError: unknown signing key)."""
        kid = jwt.get_unverified_header(token).get("kid", "")
        claims: dict[str, Any] = jwt.decode(
            token,
            await self._key(kid),
            algorithms=["RS256"],
            audience=self.url,
            issuer=self.edge.issuer,
            options={"require": ["iss", "aud", "exp", "sub"]},
        )
        granted = str(claims.get("scope", "")).split()
        missing = [s for s in self.scopes if s not in granted]
        if missing:
            raise jwt.InvalidTokenError(f"missing scope {missing}")
        return claims

    async def _claims(self, request: web.Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            self.seen.append(Seen(None, 401))
            raise self._challenge()
        try:
            return await self.verify(token)
        except (jwt.InvalidTokenError, KeyError):
            self.seen.append(Seen(None, 401))
            raise self._challenge("invalid_token") from None

    async def _mcp(self, request: web.Request) -> web.StreamResponse:
        claims = await self._claims(request)
        message = await request.json()
        method = message.get("method")
        self.seen.append(Seen(method, 200 if "id" in message else 202, claims))
        if "id" not in message:  # a notification (or a response): accepted, no body
            return web.Response(status=202)
        return web.json_response(
            {"jsonrpc": "2.0", "id": message["id"], **self._answer(message, claims)}
        )

    def _answer(self, message: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
        method, params = message.get("method"), message.get("params") or {}
        if method == "initialize":
            return {
                "result": {
                    "protocolVersion": params.get("protocolVersion"),
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "e2e-mcp-server", "version": "1.0.0"},
                }
            }
        if method == "ping":
            return {"result": {}}
        if method == "tools/list":
            tool = {
                "name": "whoami",
                "description": "The caller's access token claims",
                "inputSchema": {"type": "object", "properties": {}},
            }
            return {"result": {"tools": [tool]}}
        if method == "tools/call" and params.get("name") == "whoami":
            shown = {k: claims.get(k) for k in ("sub", "aud", "azp", "scope", "iss")}
            return {"result": {"content": [{"type": "text", "text": json.dumps(shown)}]}}
        return {"error": {"code": -32601, "message": f"Method not found: {method}"}}

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response(self.metadata())

    async def _no_stream(self, request: web.Request) -> web.Response:
        await self._claims(request)
        return web.Response(status=405, headers={"Allow": "POST"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/oauth-protected-resource/mcp", self._metadata)
        app.router.add_get("/.well-known/oauth-protected-resource", self._metadata)
        app.router.add_post("/mcp", self._mcp)
        app.router.add_get("/mcp", self._no_stream)  # no server-to-client SSE stream
        app.router.add_delete("/mcp", self._no_stream)  # no sessions
        return app

    async def call(self, token: str | None, method: str = "tools/list") -> tuple[int, Any, str]:
        """One JSON-RPC request as any client would send it: (status, body, WWW-Authenticate)."""
        headers = {"Accept": "application/json, text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.edge.session.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method}, headers=headers
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body, response.headers.get("WWW-Authenticate", "")


@asynccontextmanager
async def mcp_server(edge: Edge, scopes: tuple[str, ...] = ()) -> AsyncIterator[McpServer]:
    server = McpServer(edge, scopes)
    async with serve(server.app()) as port:
        server.origin = f"http://127.0.0.1:{port}"
        yield server


@dataclass
class NodeClient:
    """The SDK client process: its stdout events as they arrive."""

    process: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)

    async def next_event(self, wanted: str) -> dict[str, Any]:
        """Read events until one named `wanted` (each line within NODE_WAIT seconds); an
        `error` event or the end of the output fails the test with what Node said."""
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), NODE_WAIT)
            if not line:
                raise AssertionError(f"the MCP client exited early: {await self._stderr()}")
            event: dict[str, Any] = json.loads(line)
            self.events.append(event)
            if event["event"] == "error":
                raise AssertionError(f"the MCP client failed: {event}\n{await self._stderr()}")
            if event["event"] == wanted:
                return event

    async def answer(self, params: dict[str, str]) -> None:
        """What reached the redirect URI, handed to the client."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(params) + "\n").encode())
        await asyncio.wait_for(self.process.stdin.drain(), 5)

    def requests(self, method: str, url: str) -> list[dict[str, Any]]:
        """The HTTP requests the SDK sent to `url` (query ignored)."""
        return [
            e
            for e in self.events
            if e["event"] == "http" and e["method"] == method and e["url"].split("?")[0] == url
        ]

    async def _stderr(self) -> str:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        if self.process.stderr is None:
            return ""
        with contextlib.suppress(TimeoutError):
            data = await asyncio.wait_for(self.process.stderr.read(), 5)
            return data.decode(errors="replace")[-4000:]
        return ""


@asynccontextmanager
async def node_client(
    node: str, server_url: str, redirect_url: str, client_metadata_url: str | None = None
) -> AsyncIterator[NodeClient]:
    """Start tests/e2e/mcp/client.mjs against `server_url`; killed on the way out."""
    args = ["--server", server_url, "--redirect", redirect_url]
    args += ["--answer-timeout", str(ANSWER_WAIT)]
    if client_metadata_url is not None:
        args += ["--client-metadata-url", client_metadata_url]
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT_DIR / "client.mjs"),
        *args,
        cwd=CLIENT_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(process)
    finally:
        if process.returncode is None:
            process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)


def ca_signed_tls(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A fresh test CA (what CIMD_CA_FILE names) and a server TLS context for 127.0.0.1 and
    localhost whose certificate that CA issued (tests/support/cimd.py makes both);
    (the CA file, the context)."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = make_pki(directory, ("localhost",))
    return pki.ca_file, pki.server_context()


@dataclass
class DocumentServer:
    """Client ID Metadata Documents at `https://{host}:{port}/clients/{name}.json` (served on
    127.0.0.1), and every request that asked for one (the provider's fetches)."""

    origin: str = ""
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.origin}/clients/{name}.json"

    def publish(self, name: str, redirect_uri: str, **members: Any) -> str:
        """A public MCP client's document at `url(name)`; its URL (the client_id)."""
        url = self.url(name)
        self.documents[name] = {
            "client_id": url,
            "client_name": "MCP TypeScript SDK e2e client (metadata document)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "software_id": "e2e-mcp-typescript-sdk",
            "software_version": "1.0.0",
            **members,
        }
        return url

    def app(self) -> web.Application:
        async def document(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            self.fetches.append(name)
            if name not in self.documents:
                raise web.HTTPNotFound()
            return web.json_response(self.documents[name], headers={"Cache-Control": "max-age=300"})

        app = web.Application()
        app.router.add_get("/clients/{name}.json", document)
        return app


@asynccontextmanager
async def document_server(
    tls: ssl.SSLContext, host: str = "127.0.0.1"
) -> AsyncIterator[DocumentServer]:
    """Documents over https on 127.0.0.1, named in URLs by `host` (`127.0.0.1`, `localhost`)."""
    server = DocumentServer()
    async with serve(server.app(), tls) as port:
        server.origin = f"https://{host}:{port}"
        yield server


# The flow, as the tests drive it -----------------------------------------------------------


async def patch_policy(edge: Edge, token: str, policy: dict[str, Any]) -> dict[str, Any]:
    """PATCH the tenant's `dynamic_client_registration` members; the settings answered."""
    status, body = await edge.call(
        "PATCH",
        "/api/v2/tenants/settings",
        headers={"Authorization": f"Bearer {token}"},
        json={"dynamic_client_registration": policy},
    )
    assert status == 200, body
    return dict(body)


async def current_policy(edge: Edge, token: str) -> dict[str, Any]:
    status, body = await edge.call(
        "GET", "/api/v2/tenants/settings", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    return dict(body.get("dynamic_client_registration") or {})


async def wait_until_resource(edge: Edge, resource: str) -> None:
    """Settings reach the services asynchronously: wait until `/authorize` takes `resource`
    (on to the login page) instead of answering `invalid_target` (to the redirect URI)."""
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

    assert await eventually(accepted, timeout=10, interval=0.1), f"{resource} never accepted"


async def wait_for_discovery(edge: Edge, member: str, value: Any) -> dict[str, Any]:
    """RFC 8414 metadata once `member` has `value` (None: absent); the document."""
    seen: dict[str, Any] = {}

    async def applied() -> bool:
        status, body = await edge.call("GET", "/.well-known/oauth-authorization-server")
        seen.update(body if status == 200 else {})
        return status == 200 and body.get(member) == value

    assert await eventually(applied, timeout=10, interval=0.1), (member, value, seen)
    return seen


async def sign_in_and_consent(
    page: Page, authorize_url: str, email: str, password: str, shots: str
) -> str:
    """Open the SDK's `/authorize` URL, sign in by the form's labels and allow; the consent
    page's text (what the user was shown). Screenshots `{shots}-login.png`, `-consent.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    response = await page.goto(authorize_url)
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert response is not None and response.status == 200, response
    check_page_headers(await response.all_headers())
    await screenshot(page, f"{shots}-login", phone=False)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("heading", name="Authorize application").wait_for()
    consent = await page.locator("body").inner_text()
    await screenshot(page, f"{shots}-consent", phone=False)
    await page.get_by_role("button", name="Allow").click()
    return consent


@dataclass
class Flow:
    """One run of the SDK client: its events, its result, the parameters of the /authorize
    URL it built, and the consent page's text."""

    client: NodeClient
    result: dict[str, Any]
    query: dict[str, str]
    consent: str

    @property
    def client_id(self) -> str:
        return str(self.result["client"]["client_id"])

    @property
    def access_token(self) -> str:
        return str(self.result["tokens"]["access_token"])


async def run_flow(
    node: str,
    server: McpServer,
    tenant: SignInTenant,
    page: Page,
    callback: Callback,
    shots: str,
    client_metadata_url: str | None = None,
) -> Flow:
    """The SDK's whole flow, the user signing in with Chromium when it asks."""
    async with node_client(node, server.url, callback.url, client_metadata_url) as client:
        authorize = await client.next_event("authorize")
        url = authorize["url"]
        query = dict(parse_qsl(urlsplit(url).query))
        consent = await sign_in_and_consent(page, url, tenant.email, tenant.password, shots)
        params = await landed_at(page, callback)
        assert "error" not in params, params
        await client.answer({"code": params["code"], "state": params["state"]})
        result = await client.next_event("result")
        assert await asyncio.wait_for(client.process.wait(), NODE_WAIT) == 0
        return Flow(client, result, query, consent)


def check_discovery(flow: Flow, server: McpServer, edge: Edge) -> None:
    """The SDK found the provider the MCP way: 401 from the server, the server's metadata,
    then RFC 8414 at the issuer's origin (never needing OIDC discovery)."""
    client = flow.client
    [first, *_] = [e for e in client.events if e["event"] == "http"]
    assert first["url"] == server.url and first["status"] == 401, first
    [prm] = client.requests("GET", server.metadata_url)
    assert prm["status"] == 200, prm
    [rfc8414] = client.requests("GET", f"{edge.origin}/.well-known/oauth-authorization-server")
    assert rfc8414["status"] == 200, rfc8414
    assert not client.requests("GET", f"{edge.origin}/.well-known/openid-configuration")


def check_authorize_url(flow: Flow, server: McpServer) -> None:
    query = flow.query
    assert query["response_type"] == "code" and query["client_id"] == flow.client_id, query
    assert query["code_challenge_method"] == "S256" and query["code_challenge"], query
    assert query["resource"] == server.url, query


def check_token_request(flow: Flow, server: McpServer, edge: Edge) -> None:
    """The code redemption: public client (no secret), PKCE verifier, `resource`."""
    [token] = flow.client.requests("POST", f"{edge.origin}/oauth/token")
    assert token["status"] == 200, token
    form = token["form"]
    assert form["grant_type"] == "authorization_code", form
    assert form["client_id"] == flow.client_id and "client_secret" not in form, form
    assert form["resource"] == server.url, form
    assert form["code_verifier"].startswith("<"), form  # sent (its length, not its value, logged)


def check_mcp_result(flow: Flow, server: McpServer) -> dict[str, Any]:
    """tools/list and tools/call went through; the claims the server saw (the tool's answer)
    and those of the SDK's token agree, `aud` contains the server's URL; the token's claims."""
    result = flow.result
    assert [tool["name"] for tool in result["tools"]] == ["whoami"], result
    assert result["server"]["name"] == "e2e-mcp-server", result
    [content] = result["call"]["content"]
    seen_by_server = json.loads(content["text"])
    assert result["tokens"]["token_type"].lower() == "bearer", result["tokens"]
    claims: dict[str, Any] = jwt.decode(flow.access_token, options={"verify_signature": False})
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert server.url in aud, claims
    assert claims["iss"] == server.edge.issuer and claims["azp"] == flow.client_id, claims
    assert seen_by_server["sub"] == claims["sub"] and seen_by_server["aud"] == claims["aud"]
    accepted = [s for s in server.seen if s.claims is not None]
    assert {s.method for s in accepted} >= {"initialize", "tools/list", "tools/call"}, server.seen
    return claims


async def check_refused(server: McpServer, token: str | None, why: str) -> None:
    """401 with the challenge that sends a client to the server's metadata."""
    status, body, challenge = await server.call(token)
    assert status == 401, (why, status, body)
    assert challenge.startswith(f'Bearer resource_metadata="{server.metadata_url}"'), challenge
    if token is not None:
        assert body["error"] == "invalid_token" and 'error="invalid_token"' in challenge, why


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
