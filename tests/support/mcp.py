"""MCP test equipment: a small MCP server (Streamable HTTP, JSON responses, served by the test
on 127.0.0.1) that accepts only this provider's access tokens for itself, and the MCP client
of tests/e2e/mcp/ (the official MCP TypeScript SDK under Node) as a subprocess.

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
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web

from .browser import serve
from .gateway import Edge

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "tests" / "e2e" / "mcp"
NODE_WAIT = 60.0  # seconds: each line the test waits for from the Node client
ANSWER_WAIT = 90  # seconds: how long the Node client waits for the redirect's parameters


def require_node_client() -> str:
    """The `node` executable, with the client's dependencies installed from package-lock.json
    (`install.sh`: `npm ci` once per lock file). A failure, never a skip, without Node/npm."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm not found: the MCP TypeScript SDK test runs the official SDK under "
            "Node.js 20+ (install Node.js with npm, e.g. `apt-get install nodejs npm`; "
            "`make test` then installs the SDK with `npm ci` in tests/e2e/mcp).",
            pytrace=False,
        )
    try:
        subprocess.run([str(CLIENT_DIR / "install.sh")], check=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"tests/e2e/mcp/install.sh (npm ci) failed: {exc}", pytrace=False)
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
