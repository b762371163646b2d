"""The committed compose gateway, run by the real nginx against replicas that come and go.

Docker is not needed to see what `docker compose up --scale registration=3` relies on: the
rendering looks service names up per request through `resolver`, so a small DNS server here
plays Docker's (answering `registration` with the replicas' addresses, 127.0.0.2-4), and tiny
HTTP servers play the replicas. Only the listen ports, the resolver's address and the
replicas' port are changed from the committed file; everything else is what compose runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.deploy.conftest import ROOT
from tests.support.stack import free_port

REPLICAS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


class FakeDockerDns(asyncio.DatagramProtocol):
    """Answers A queries for the names in `records` (TTL 0), NXDOMAIN for any other name."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answer(data), addr)

    def answer(self, query: bytes) -> bytes:
        (query_id,) = struct.unpack("!H", query[:2])
        labels, offset = [], 12
        while length := query[offset]:
            labels.append(query[offset + 1 : offset + 1 + length].decode())
            offset += 1 + length
        qtype, _ = struct.unpack("!HH", query[offset + 1 : offset + 5])
        question = query[12 : offset + 5]
        name = ".".join(labels).lower()
        addresses = self.records.get(name, []) if qtype == 1 else []
        rcode = 0 if name in self.records and addresses else 3
        header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, len(addresses), 0, 0)
        answers = b"".join(
            struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(a) for a in addresses
        )
        return header + question + answers


@dataclass
class Replicas:
    """HTTP servers standing in for registration replicas; each answers who it is and the
    forwarding headers it received."""

    port: int
    runners: dict[str, web.AppRunner] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    async def start(self, address: str) -> None:
        async def echo(request: web.Request) -> web.Response:
            self.hits[address] = self.hits.get(address, 0) + 1
            await request.read()
            return web.json_response(
                {
                    "replica": address,
                    "headers": {k: v for k, v in request.headers.items() if k.startswith("X-")},
                }
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, address, self.port).start()
        self.runners[address] = runner

    async def stop(self, address: str) -> None:
        await self.runners.pop(address).cleanup()


@dataclass
class ComposeGateway:
    port: int
    dns: FakeDockerDns
    replicas: Replicas
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.session.request(
            method,
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Host": "localhost:8080", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=15),
            **kwargs,
        ) as response:
            return response.status, json.loads(await response.text() or "null")


def compose_rendering_for_test(
    gateway_port: int, health_port: int, dns_port: int, port: int
) -> str:
    text = (ROOT / "deploy/nginx/rendered/compose.conf").read_text()
    replacements = {
        "worker_processes auto;": "worker_processes 1;",
        "resolver 127.0.0.11 valid=5s": f"resolver 127.0.0.1:{dns_port} valid=1s",
        "listen 8080;": f"listen 127.0.0.1:{gateway_port};",
        "listen 8081;": f"listen 127.0.0.1:{health_port};",
        "registration:8000;": f"registration:{port};",
        "authorize:8000;": f"authorize:{port};",
        "tenant-settings:8000;": f"tenant-settings:{port};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx_process(
    nginx: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, int, int, int]]:
    """nginx running the compose rendering; (gateway, health, dns, replica) ports."""
    ports = (free_port(), free_port(), free_port(), free_port())
    prefix: Path = tmp_path_factory.mktemp("compose-gateway")
    conf = prefix / "nginx.conf"
    conf.write_text(compose_rendering_for_test(*ports))
    log = (prefix / "nginx.log").open("wb")
    process = subprocess.Popen(
        [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ports[0]), 1):
                break
            time.sleep(0.05)
        yield ports
    finally:
        os.killpg(process.pid, signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
async def compose_gateway(
    nginx_process: tuple[int, int, int, int],
) -> AsyncIterator[ComposeGateway]:
    gateway_port, _, dns_port, replica_port = nginx_process
    loop = asyncio.get_running_loop()
    dns = FakeDockerDns()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: dns, local_addr=("127.0.0.1", dns_port)
    )
    replicas = Replicas(replica_port)
    try:
        async with aiohttp.ClientSession() as session:
            yield ComposeGateway(gateway_port, dns, replicas, session)
    finally:
        for address in list(replicas.runners):
            await replicas.stop(address)
        transport.close()


async def _wait_for_dns_expiry() -> None:
    # The test rendering caches answers 1 s (compose: 5 s), counted in whole seconds.
    await asyncio.sleep(2.2)


async def test_scaled_replicas_all_serve_and_replicas_that_come_and_go_are_followed(
    compose_gateway: ComposeGateway,
) -> None:
    gw = compose_gateway
    first, second, third = REPLICAS
    for address in (first, second):
        await gw.replicas.start(address)
    gw.dns.records["registration"] = [first, second]
    answered = set()
    for _ in range(40):
        status, body = await gw.call("GET", "/oidc/register/some-client")
        assert status == 200, body
        answered.add(body["replica"])
    assert answered == {first, second}, "both replicas behind one name take requests"

    # Scaled: a third replica appears, the first goes away (as `--scale` and restarts do).
    await gw.replicas.start(third)
    gw.dns.records["registration"] = [second, third]
    await gw.replicas.stop(first)
    await _wait_for_dns_expiry()
    answered = set()
    for _ in range(40):
        status, body = await gw.call("GET", "/api/v2/clients", headers={"Authorization": "x"})
        assert status == 200, body
        answered.add(body["replica"])
    assert answered == {second, third}


async def test_a_replica_that_refuses_connections_is_skipped_even_for_a_post(
    compose_gateway: ComposeGateway,
) -> None:
    """A replica stopped before Docker's DNS forgets it: its connection is refused, so the
    request never reached it and nginx passes even a POST to the next replica."""
    gw = compose_gateway
    live, gone = REPLICAS[0], REPLICAS[1]
    await gw.replicas.start(live)
    gw.dns.records["registration"] = [live, gone]  # `gone` runs no server at all
    await _wait_for_dns_expiry()
    for _ in range(30):
        status, body = await gw.call("POST", "/oidc/register", json={"client_name": "x"})
        assert status == 200, body
        assert body["replica"] == live


async def test_no_replica_at_all_is_a_json_502_in_the_endpoints_format(
    compose_gateway: ComposeGateway,
) -> None:
    gw = compose_gateway  # no DNS record for any service: Docker has none running
    status, body = await gw.call("POST", "/oauth/token", data={"grant_type": "x"})
    assert status == 502
    assert body == {
        "error": "temporarily_unavailable",
        "error_description": "The service is unreachable, retry later",
    }
    status, body = await gw.call("PATCH", "/api/v2/tenants/settings", json={})
    assert status == 502
    assert body["statusCode"] == 502 and body["errorCode"] == "service_unreachable"


async def test_forwarding_headers_are_the_gateways_own(compose_gateway: ComposeGateway) -> None:
    gw = compose_gateway
    await gw.replicas.start(REPLICAS[0])
    gw.dns.records["registration"] = [REPLICAS[0]]
    await _wait_for_dns_expiry()
    status, body = await gw.call(
        "GET",
        "/oidc/register/abc",
        headers={
            "X-Forwarded-For": "203.0.113.9",  # a client's claim: overwritten at the edge
            "X-Forwarded-Proto": "https",
            "X-Request-ID": "caller-id-123",
        },
    )
    assert status == 200
    headers = body["headers"]
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] == "localhost:8080"
    assert headers["X-Request-ID"] == "caller-id-123"
    # An id the services would refuse is replaced by one the gateway mints.
    status, body = await gw.call(
        "GET", "/oidc/register/abc", headers={"X-Request-ID": "bad id with spaces"}
    )
    minted = body["headers"]["X-Request-ID"]
    assert minted != "bad id with spaces" and len(minted) == 32


async def test_internal_paths_and_large_bodies(compose_gateway: ComposeGateway) -> None:
    gw = compose_gateway
    for path in ("/healthz", "/readyz", "/metrics"):
        status, body = await gw.call("GET", path)
        assert (status, body["error"]) == (404, "not_found")
    status, body = await gw.call(
        "PATCH",
        "/api/v2/tenants/settings",
        data=b"x" * (70 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert status == 413 and body["statusCode"] == 413


async def _answer(
    gw: ComposeGateway, method: str, path: str, **kwargs: Any
) -> aiohttp.ClientResponse:
    async with gw.session.request(
        method,
        f"http://127.0.0.1:{gw.port}{path}",
        headers={"Host": "localhost:8080", **kwargs.pop("headers", {})},
        timeout=aiohttp.ClientTimeout(total=15),
        **kwargs,
    ) as response:
        await response.read()
        return response


async def test_a_compressed_request_body_is_415_at_the_edge(
    compose_gateway: ComposeGateway,
) -> None:
    """Issue 21: no endpoint takes a compressed body, so none reaches a service (where a body
    that fails to decode once broke the connection the next request would use)."""
    gw = compose_gateway
    await gw.replicas.start(REPLICAS[0])
    gw.dns.records["registration"] = [REPLICAS[0]]
    await _wait_for_dns_expiry()
    for path, encoding, shape in (
        ("/oidc/register", "gzip", "oauth"),
        ("/oidc/register", "br, identity", "oauth"),
        ("/api/v2/clients", "deflate", "management"),
    ):
        response = await _answer(
            gw, "POST", path, data=b"\x1f\x8b not really", headers={"Content-Encoding": encoding}
        )
        assert response.status == 415, (path, encoding)
        assert response.headers["Accept-Encoding"] == "identity"
        assert response.headers["Cache-Control"] == "no-store"
        body = json.loads(await response.text())
        if shape == "oauth":
            assert (
                body["error"] == "invalid_request"
                and "Content-Encoding" in body["error_description"]
            )
        else:
            assert (body["statusCode"], body["errorCode"]) == (415, "unsupported_media_type")
    assert gw.replicas.hits.get(REPLICAS[0], 0) == 0, "a refused body never reached a replica"
    # identity is no coding at all: passed on.
    response = await _answer(
        gw, "POST", "/oidc/register", json={}, headers={"Content-Encoding": "Identity"}
    )
    assert response.status == 200 and gw.replicas.hits[REPLICAS[0]] == 1


async def test_a_path_nginx_cannot_normalise_is_not_a_500(compose_gateway: ComposeGateway) -> None:
    """A second review found `%00` in a path turned into nginx's 500 by a named 400 page."""
    for path in ("/u/apps%00", "/api/v2/grants/cgr_%00", "/u/%2e%2e/%2e%2e/x"):
        response = await _answer(compose_gateway, "GET", path)
        assert response.status in (400, 404), (path, response.status)  # never a 500


async def test_the_gateways_own_answers_are_never_cached(compose_gateway: ComposeGateway) -> None:
    gw = compose_gateway  # no replica: 502s in both formats
    for method, path, kwargs in (
        ("POST", "/oauth/token", {"data": {"grant_type": "x"}}),
        ("PATCH", "/api/v2/tenants/settings", {"json": {}}),
        ("GET", "/nowhere", {}),
        ("PATCH", "/api/v2/tenants/settings", {"data": b"x" * (70 * 1024)}),
        # nginx's own refusals (a second review found them in nginx's HTML, cacheable).
        ("TRACE", "/authorize", {}),
        ("POST", "/api/v2/clients", {"headers": {"Transfer-Encoding": "bogus"}}),
    ):
        response = await _answer(gw, method, path, **kwargs)
        assert response.status in (404, 405, 413, 501, 502), (path, response.status)
        assert response.headers["Cache-Control"] == "no-store", (path, response.status)
        assert response.content_type == "application/json"
