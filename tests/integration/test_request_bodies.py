"""Unreadable request bodies (issue 21, point 2): a compressed body is refused with 415 and the
connection is closed behind it, on every service, so the next request a proxy might send on
that connection (another user's) is never lost on a broken parser. Raw sockets, so that the
connection's fate is what the test sees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from authorize_service.app import create_app as authorize_app
from oidc_common.config import Settings
from registration_service.app import create_app as registration_app
from tenant_settings_service.app import create_app as tenant_settings_app
from tests.conftest import SettingsFactory
from tests.support.services import serve
from tests.support.tenants import bootstrap_tenant

HOST = "bodies.example"
AppFactory = Callable[[Settings], web.Application]
SERVICES: list[tuple[str, AppFactory, str, str]] = [
    ("authorize", authorize_app, "/oauth/token", "application/x-www-form-urlencoded"),
    ("authorize", authorize_app, "/u/login", "application/x-www-form-urlencoded"),
    ("registration", registration_app, "/oidc/register", "application/json"),
    ("tenant-settings", tenant_settings_app, "/api/v2/tenants/settings", "application/json"),
]


def _request(method: str, path: str, content_type: str, body: bytes, *extra: str) -> bytes:
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _answers(port: int, *requests: bytes) -> bytes:
    """Everything the server sends on one connection that carries `requests` back to back,
    until it closes the connection or stays silent for a second."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            await asyncio.sleep(0.1)
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 1.0)
            except TimeoutError:
                return received
            if not chunk:
                return received + b"<closed>"
            received += chunk
    finally:
        writer.close()


@pytest.mark.parametrize(("service", "factory", "path", "content_type"), SERVICES)
async def test_a_compressed_body_is_415_and_the_connection_closes(
    settings_for: SettingsFactory,
    service: str,
    factory: AppFactory,
    path: str,
    content_type: str,
) -> None:
    settings = settings_for(service)
    await bootstrap_tenant(settings, HOST)
    bad = _request("POST", path, content_type, b"not gzip at all", "Content-Encoding: gzip")
    ordinary = _request("GET", "/.well-known/jwks.json", "text/plain", b"")
    async with serve(factory(settings)) as client:
        assert client.server.port is not None
        received = await _answers(client.server.port, bad, ordinary)
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 415 Unsupported Media Type", received
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["connection"] == "close" and headers["accept-encoding"] == "identity"
    assert headers["content-type"].startswith("application/json")
    # The connection ends after the 415: the request behind it was never read as a new one.
    assert rest.endswith(b"<closed>") and b"HTTP/1.1" not in rest, received


async def test_identity_is_no_coding_and_keeps_the_connection(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, HOST)
    form = b"grant_type=unknown"
    first = _request(
        "POST",
        "/oauth/token",
        "application/x-www-form-urlencoded",
        form,
        "Content-Encoding: identity",
    )
    second = _request("POST", "/oauth/token", "application/x-www-form-urlencoded", form)
    async with serve(authorize_app(settings)) as client:
        assert client.server.port is not None
        received = await _answers(client.server.port, first, second)
    assert received.count(b"HTTP/1.1 400 Bad Request") == 2, received
    assert b"<closed>" not in received
