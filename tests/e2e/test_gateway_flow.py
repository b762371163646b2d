"""End to end through the nginx gateway, as a newcomer does it after `make run`.

The three services run as separate processes (registration with two replicas; the
`stack_processes` fixture of tests/e2e/conftest.py), nginx routes the public paths, and every
step uses plain HTTP against the gateway.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

SEED_EXAMPLE = {
    "client_name": "My Dynamic Application",
    "redirect_uris": [
        "https://application.example.com/callback",
        "https://application.example.com/callback2",
    ],
}


class Gateway:
    def __init__(self, port: int, creds: dict[str, str]) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"http://localhost:{port}"
        self.creds = creds
        self.session = aiohttp.ClientSession()

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Host": self.origin.removeprefix("http://"), **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as response:
            body = await response.json(content_type=None) if response.content_length != 0 else None
            return response.status, body


@pytest.fixture
async def gateway(stack_processes: tuple[int, dict[str, str], str]) -> AsyncIterator[Gateway]:
    port, creds, _ = stack_processes
    gw = Gateway(port, creds)
    yield gw
    await gw.session.close()


async def _token(gw: Gateway, basic: bool = False) -> str:
    form = {"grant_type": "client_credentials", "audience": f"{gw.origin}/api/v2/"}
    headers: dict[str, str] = {}
    if basic:
        pair = f"{gw.creds['client_id']}:{gw.creds['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        form.update(client_id=gw.creds["client_id"], client_secret=gw.creds["client_secret"])
    status, body = await gw.call("POST", "/oauth/token", data=form, headers=headers)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    token: str = body["access_token"]
    return token


async def _wait_for_state(gw: Gateway, expected: int, attempts: int = 100) -> None:
    # Each POST may land on either replica; both must agree before we stop.
    hits = 0
    for _ in range(attempts):
        status, _ = await gw.call("POST", "/oidc/register", json=SEED_EXAMPLE)
        hits = hits + 1 if status == expected else 0
        if hits >= 6:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"registration never settled on {expected}")


async def test_discovery_through_the_gateway(gateway: Gateway) -> None:
    status, metadata = await gateway.call("GET", "/.well-known/openid-configuration")
    assert status == 200
    assert metadata["issuer"] == f"{gateway.origin}/"
    assert metadata["token_endpoint"] == f"{gateway.origin}/oauth/token"
    status, jwks = await gateway.call("GET", "/.well-known/jwks.json")
    assert status == 200 and jwks["keys"][0]["alg"] == "RS256"


async def test_health_endpoints_are_not_public(gateway: Gateway) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        status, body = await gateway.call("GET", path)
        assert status == 404 and body["error"] == "not_found"


async def test_newcomer_flow_flag_on_then_off(gateway: Gateway) -> None:
    token = await _token(gateway)
    auth = {"Authorization": f"Bearer {token}"}

    status, body = await gateway.call(
        "PATCH",
        "/api/v2/tenants/settings",
        headers=auth,
        json={"flags": {"enable_dynamic_client_registration": True}},
    )
    assert status == 200, body
    assert body["flags"]["enable_dynamic_client_registration"] is True
    status, body = await gateway.call("GET", "/api/v2/tenants/settings", headers=auth)
    assert status == 200 and body["flags"]["enable_dynamic_client_registration"] is True

    await _wait_for_state(gateway, 201)
    status, client = await gateway.call("POST", "/oidc/register", json=SEED_EXAMPLE)
    assert status == 201, client
    assert client["client_secret"] and client["client_secret_expires_at"] == 0
    assert client["registration_client_uri"].startswith(f"{gateway.origin}/oidc/register/")
    status, public = await gateway.call(
        "POST", "/oidc/register", json={**SEED_EXAMPLE, "token_endpoint_auth_method": "none"}
    )
    assert status == 201 and "client_secret" not in public
    status, metadata = await gateway.call("GET", "/.well-known/openid-configuration")
    assert metadata["registration_endpoint"] == f"{gateway.origin}/oidc/register"

    # RFC 7592 through the gateway.
    path = client["registration_client_uri"].removeprefix(gateway.origin)
    status, read = await gateway.call(
        "GET", path, headers={"Authorization": f"Bearer {client['registration_access_token']}"}
    )
    assert status == 200 and read["client_id"] == client["client_id"]

    status, body = await gateway.call(
        "PATCH",
        "/api/v2/tenants/settings",
        headers={"Authorization": f"Bearer {await _token(gateway, basic=True)}"},
        json={"flags": {"enable_dynamic_client_registration": False}},
    )
    assert status == 200
    await _wait_for_state(gateway, 403)
    status, body = await gateway.call("POST", "/oidc/register", json=SEED_EXAMPLE)
    assert status == 403
    assert body == {
        "error": "access_denied",
        "error_description": "Dynamic client registration is disabled for this tenant",
    }
    status, metadata = await gateway.call("GET", "/.well-known/openid-configuration")
    assert "registration_endpoint" not in metadata


@pytest.mark.parametrize(
    ("path", "size", "shape"),
    [
        # Over the limit: the gateway refuses it from the headers, in the endpoint's format.
        ("/oidc/register", 70 * 1024, "oauth"),
        ("/api/v2/tenants/settings", 70 * 1024, "management"),
        ("/oidc/register", 2 * 1024 * 1024, "oauth"),
    ],
)
async def test_oversized_bodies_get_a_json_413_through_the_gateway(
    gateway: Gateway, path: str, size: int, shape: str
) -> None:
    token = await _token(gateway)
    body = b'{"client_name":"' + b"x" * size + b'"}'
    headers = {"Host": gateway.origin.removeprefix("http://"), "Content-Type": "application/json"}
    method = "POST"
    if path.startswith("/api/v2/"):
        method = "PATCH"
        headers["Authorization"] = f"Bearer {token}"
    await _set_registration(gateway, token, True)  # else the gate answers 403 first
    try:
        async with gateway.session.request(
            method, f"{gateway.base}{path}", data=body, headers=headers
        ) as response:
            assert response.status == 413
            assert response.content_type == "application/json"
            answer = await response.json()
    finally:
        await _set_registration(gateway, token, False)
    if shape == "oauth":
        assert answer == {"error": "invalid_request", "error_description": "Request body too large"}
    else:
        assert answer["statusCode"] == 413 and answer["message"] == "Request body too large"


async def test_a_body_over_the_gateways_memory_buffer_reaches_the_service(
    gateway: Gateway,
) -> None:
    """Larger than nginx's default body buffer (16 KiB), under the limit (64 KiB): it must
    reach the service (a temporary file the workers cannot write would make it a 500)."""
    token = await _token(gateway)
    status, body = await gateway.call(
        "PATCH",
        "/api/v2/tenants/settings",
        json={"friendly_name": "x" * 40_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 400, body  # the service's own answer: the name is too long
    assert body["statusCode"] == 400 and "friendly_name" in body["message"]


async def _set_registration(gw: Gateway, token: str, enabled: bool) -> None:
    status, _ = await gw.call(
        "PATCH",
        "/api/v2/tenants/settings",
        json={
            "flags": {"enable_dynamic_client_registration": enabled},
            # Room for the probes below, after the newcomer flow used the default budget.
            "dynamic_client_registration": {"rate_limit": {"requests": 600, "window_seconds": 60}},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200
    await _wait_for_state(gw, 201 if enabled else 403)
