"""The sign-in demo `make run` prepares on the demo tenant, through the gateway's public API.

A demo user (password made once, kept in `.local/demo-user.json`, mode 600), the seed's API
(`appointments:api` with scopes `appointments` and `contacts`), open registration turned on,
and a freshly registered demo client whose redirect URI is the stack's own
`/u/demo/callback` page; then two ready links: the seed's implicit link and code + PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

DEMO_EMAIL = "demo@example.com"
CALLBACK_PATH = "/u/demo/callback"


class Gateway:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"http://localhost:{port}"
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None, form: bool = False) -> tuple[int, Any]:
        headers = {"Host": self.origin.removeprefix("http://")}
        data = None
        if body is not None:
            data = urlencode(body).encode() if form else json.dumps(body).encode()
            headers["Content-Type"] = (
                "application/x-www-form-urlencoded" if form else "application/json"
            )
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def _demo_password(state: Path) -> tuple[str, bool]:
    """The demo user's password and whether it was just made."""
    path = state / "demo-user.json"
    if path.exists():
        return str(json.loads(path.read_text())["password"]), False
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({"email": DEMO_EMAIL, "password": password}))
    path.chmod(0o600)
    return password, True


def _management_token(gw: Gateway, creds: dict[str, str]) -> str:
    status, body = gw.call(
        "POST",
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "audience": f"{gw.origin}/api/v2/",
        },
        form=True,
    )
    if status != 200:
        raise RuntimeError(f"demo: no Management API token ({status} {body})")
    return str(body["access_token"])


def _demo_user_and_api(gw: Gateway, state: Path) -> str:
    """The demo user and the seed's API (both kept from an earlier run); the password."""
    password, new = _demo_password(state)
    user = {
        "email": DEMO_EMAIL,
        "password": password,
        "connection": "Username-Password-Authentication",
        "email_verified": True,
        "name": "Demo User",
    }
    status, body = gw.call("POST", "/api/v2/users", user)
    if status not in (201, 409) or (status == 409 and new):
        raise RuntimeError(f"demo: creating the demo user failed ({status} {body})")
    api = {
        "identifier": "appointments:api",
        "name": "Appointments",
        "scopes": [
            {"value": "appointments", "description": "Read your appointments"},
            {"value": "contacts", "description": "Read your contacts"},
        ],
    }
    status, body = gw.call("POST", "/api/v2/resource-servers", api)
    if status not in (201, 409):
        raise RuntimeError(f"demo: creating the demo API failed ({status} {body})")
    return password


def _register_demo_client(gw: Gateway, redirect: str) -> str:
    """Open registration, then register the demo client through POST /oidc/register."""
    status, body = gw.call(
        "PATCH", "/api/v2/tenants/settings", {"flags": {"enable_dynamic_client_registration": True}}
    )
    if status != 200:
        raise RuntimeError(f"demo: turning registration on failed ({status} {body})")
    gw.token = None
    client = {
        "client_name": "Demo application",
        "application_type": "native",  # http on localhost, as a native app's loopback redirect
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "implicit"],
        "response_types": ["code", "id_token token"],
        "redirect_uris": [redirect],
    }
    for _ in range(50):  # the settings event reaches registration within milliseconds
        status, body = gw.call("POST", "/oidc/register", client)
        if status == 201:
            return str(body["client_id"])
        time.sleep(0.1)
    raise RuntimeError(f"demo: registering the demo client failed ({status} {body})")


def _links(gw: Gateway, client_id: str, redirect: str) -> dict[str, str]:
    """The seed's implicit link and a code + PKCE link (with its verifier)."""
    implicit = {
        "scope": "openid appointments contacts",
        "audience": "appointments:api",
        "response_type": "id_token token",
        "client_id": client_id,
        "redirect_uri": redirect,
        "nonce": secrets.token_urlsafe(8),
        "state": secrets.token_urlsafe(8),
    }
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid profile email",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "state": secrets.token_urlsafe(8),
    }
    return {
        "implicit_link": f"{gw.origin}/authorize?{urlencode(implicit)}",
        "code_link": f"{gw.origin}/authorize?{urlencode(code)}",
        "code_verifier": verifier,
    }


def prepare(port: int, creds: dict[str, str], state: Path) -> dict[str, str]:
    """Set the demo up; returns what the welcome text prints. Raises RuntimeError on failure."""
    gw = Gateway(port)
    gw.token = _management_token(gw, creds)
    password = _demo_user_and_api(gw, state)
    redirect = f"{gw.origin}{CALLBACK_PATH}"
    client_id = _register_demo_client(gw, redirect)
    return {
        "email": DEMO_EMAIL,
        "password": password,
        "client_id": client_id,
        "redirect_uri": redirect,
        "token_url": f"{gw.origin}/oauth/token",
        **_links(gw, client_id, redirect),
    }


def welcome_text(demo: dict[str, str]) -> str:
    return f"""
 Sign in as a user of a dynamically registered app (open these in a browser):
   demo user:   {demo["email"]}  password: {demo["password"]}
   demo client: {demo["client_id"]} (registered just now through POST /oidc/register)

   The seed's implicit link (ID token + access token for appointments:api, in the fragment):
     {demo["implicit_link"]}

   Code + PKCE; then exchange the code shown on the callback page:
     {demo["code_link"]}
     curl -s {demo["token_url"]} -d grant_type=authorization_code -d client_id={demo["client_id"]} \\
       -d redirect_uri={demo["redirect_uri"]} -d code_verifier={demo["code_verifier"]} -d code=CODE"""
