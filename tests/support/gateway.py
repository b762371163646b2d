"""A tenant owner and a client talking to the stack through the nginx gateway, over plain HTTP.

Requests go to 127.0.0.1 with `Host: localhost:{port}`: the tenant is `localhost` and its
issuer `http://localhost:{port}/`, what a browser opening `http://localhost:{port}/` sees.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

APPOINTMENTS_API = "appointments:api"
APPOINTMENTS_SCOPES = (
    ("appointments", "Read and manage your appointments"),
    ("contacts", "Read your contacts"),
)
PASSWORD = "correct horse battery staple"
REGISTRATION_PROBE = {
    "client_name": "Registration probe",
    "redirect_uris": ["https://probe.example.com/callback"],
}


async def json_or_text(response: aiohttp.ClientResponse) -> Any:
    """A response's body: its JSON, its text when that is not JSON, None when empty."""
    text = await response.text()
    try:
        return await response.json(content_type=None) if text else None
    except ValueError:
        return text


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class SignInTenant:
    """The `localhost` tenant made ready for sign-in: registration on, a user, the seed's API."""

    edge: Edge
    management_token: str
    email: str
    password: str
    user: dict[str, Any]
    api: dict[str, Any]


class Edge:
    """HTTP through the gateway, as the tenant `localhost` (`creds`: its Management API client)."""

    def __init__(self, port: int, creds: dict[str, str], session: aiohttp.ClientSession) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"http://localhost:{port}"
        self.issuer = f"{self.origin}/"
        self.creds = creds
        self.session = session

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """`path` on the gateway (or a full URL of the tenant's origin); (status, JSON body)."""
        path = path.removeprefix(self.origin)
        all_headers = {"Host": f"localhost:{self.port}", **(headers or {})}
        async with self.session.request(
            method,
            self.base + path,
            headers=all_headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=20),
            **kwargs,
        ) as response:
            return response.status, await json_or_text(response)

    async def management_token(self) -> str:
        """client_credentials with the demo tenant's credentials, for the Management API."""
        status, body = await self.call(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.creds["client_id"],
                "client_secret": self.creds["client_secret"],
                "audience": f"{self.issuer}api/v2/",
            },
        )
        assert status == 200, body
        token: str = body["access_token"]
        return token

    async def enable_registration(self, token: str) -> None:
        """Turn open registration on, with room for the registrations of a test run, and wait
        until both registration replicas answer 201."""
        status, body = await self.call(
            "PATCH",
            "/api/v2/tenants/settings",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {
                    "rate_limit": {"requests": 600, "window_seconds": 60}
                },
            },
        )
        assert status == 200, body
        hits = 0
        for _ in range(200):  # at most ~10 s
            status, _ = await self.call("POST", "/oidc/register", json=REGISTRATION_PROBE)
            hits = hits + 1 if status == 201 else 0
            if hits >= 6:  # each POST may land on either replica
                return
            await asyncio.sleep(0.05)
        raise AssertionError("registration never answered 201 after it was enabled")

    async def create_user(self, token: str, email: str, password: str) -> dict[str, Any]:
        status, user = await self.call(
            "POST",
            "/api/v2/users",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "email": email,
                "password": password,
                "connection": "Username-Password-Authentication",
                "email_verified": True,
                "name": "Ada Lovelace",
            },
        )
        assert status == 201, user
        return dict(user)

    async def create_appointments_api(self, token: str) -> dict[str, Any]:
        """The seed's API, `appointments:api` with scopes `appointments` and `contacts`."""
        status, api = await self.call(
            "POST",
            "/api/v2/resource-servers",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "identifier": APPOINTMENTS_API,
                "name": "Appointments",
                "scopes": [{"value": v, "description": d} for v, d in APPOINTMENTS_SCOPES],
                "allow_offline_access": True,
            },
        )
        if status == 409:  # another module of this session created it already
            status, servers = await self.call(
                "GET", "/api/v2/resource-servers", headers={"Authorization": f"Bearer {token}"}
            )
            assert status == 200, servers
            [api] = [s for s in servers if s["identifier"] == APPOINTMENTS_API]
            return dict(api)
        assert status == 201, api
        return dict(api)

    async def sign_in_tenant(self) -> SignInTenant:
        token = await self.management_token()
        await self.enable_registration(token)
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        user = await self.create_user(token, email, PASSWORD)
        api = await self.create_appointments_api(token)
        return SignInTenant(self, token, email, PASSWORD, user, api)

    async def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """`POST /oidc/register` (no token, as anyone may once registration is on)."""
        status, client = await self.call("POST", "/oidc/register", json=metadata)
        assert status == 201, client
        return dict(client)

    async def token(
        self, form: dict[str, str], basic: tuple[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {}
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        status, body = await self.call("POST", "/oauth/token", data=form, headers=headers)
        return status, dict(body)

    async def userinfo(self, access_token: str) -> tuple[int, Any]:
        return await self.call(
            "GET", "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )

    async def jwks(self) -> jwt.PyJWKSet:
        status, body = await self.call("GET", "/.well-known/jwks.json")
        assert status == 200, body
        return jwt.PyJWKSet.from_dict(body)
