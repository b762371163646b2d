"""Sign-in test helpers: clients, users and APIs of a tenant, and a cookie-keeping browser
that follows the authorization flow over real HTTP (no JavaScript: form_post pages are read).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from authorize_service.resource_servers.repository import ResourceServers
from authorize_service.resources import PASSWORDS, USERS
from authorize_service.users.repository import User
from oidc_common.credentials import hash_secret
from oidc_common.mongo import Collections
from oidc_common.service import DB

from .authorize import AuthorizeEnv

PASSWORD = "correct horse battery staple"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


async def add_client(env: AuthorizeEnv, **overrides: Any) -> dict[str, Any]:
    """A dynamically registered (third-party) client, stored as the registration service
    stores one; returns its metadata plus `client_id` and `client_secret`."""
    client_id = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(32)
    metadata: dict[str, Any] = {
        "client_name": "Test App",
        "redirect_uris": ["https://app.example.com/callback"],
        "application_type": "web",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        **overrides,
    }
    doc = {
        "_id": client_id,
        "tenant_id": env.tenant.tenant_id,
        **{
            name: metadata[name]
            for name in (
                "client_name",
                "redirect_uris",
                "grant_types",
                "response_types",
                "token_endpoint_auth_method",
                "application_type",
            )
        },
        "metadata": metadata,
        "client_secret_hash": (
            hash_secret(secret) if metadata["token_endpoint_auth_method"] != "none" else None
        ),
        "dynamic": True,
        "is_first_party": False,
        "reaped_at": None,
        "last_used_at": None,
    }
    await env.db[Collections.CLIENTS].insert_one(doc)
    return {**metadata, "client_id": client_id, "client_secret": secret}


async def add_user(env: AuthorizeEnv, email: str = "ada@example.com", **extra: Any) -> User:
    users, passwords = env.app[USERS], env.app[PASSWORDS]
    return await users.create(
        env.tenant.tenant_id,
        email,
        await passwords.hash(PASSWORD),
        email_verified=True,
        name=extra.get("name", "Ada Lovelace"),
    )


async def add_api(env: AuthorizeEnv, identifier: str = "appointments:api", **extra: Any) -> None:
    await ResourceServers(env.app[DB]).create(
        env.tenant.tenant_id,
        identifier=identifier,
        name=extra.pop("name", "Appointments"),
        scopes=extra.pop(
            "scopes",
            [("appointments", "Read your appointments"), ("contacts", "Read your contacts")],
        ),
        **extra,
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and values.get("type") == "hidden" and "name" in values:
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Landing:
    """Where the flow ended: the client's redirect URI with its parameters, or a page."""

    status: int
    url: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    page: str | None = None
    response: ClientResponse | None = None


@dataclass
class Browser:
    http: TestClient[web.Request, web.Application]
    host: str
    redirect_prefixes: tuple[str, ...] = (
        "https://app.example.com",
        "http://127.0.0.1",
        "http://[::1]",
    )
    # Sent with every request: e.g. X-Forwarded-For, to stand at another client address (the
    # test services trust the loopback proxy).
    headers: dict[str, str] = field(default_factory=dict)

    async def go(self, method: str, path: str, **kwargs: Any) -> Landing:
        """Follow redirects inside the provider; stop at the client or at a page."""
        for _ in range(10):
            response = await self.http.request(
                method,
                path,
                headers={"Host": self.host, **self.headers},
                allow_redirects=False,
                **kwargs,
            )
            body = await response.text()
            if response.status in (302, 303):
                location = response.headers["Location"]
                if location.startswith("/"):
                    method, path, kwargs = "GET", location, {}
                    continue
                parts = urlsplit(location)
                params = dict(parse_qsl(parts.fragment or parts.query))
                return Landing(response.status, location, params, response=response)
            posted = [
                form for form in forms(body) if form["action"].startswith(self.redirect_prefixes)
            ]
            if posted:  # a form_post answer: read what the form would post
                return Landing(
                    response.status, posted[0]["action"], posted[0]["fields"], body, response
                )
            return Landing(response.status, page=body, response=response)
        raise AssertionError("too many redirects")

    async def authorize(self, **params: str) -> Landing:
        return await self.go("GET", "/authorize?" + urlencode(params))

    async def submit(self, landing: Landing, action: str | None = None, **fields: str) -> Landing:
        assert landing.page is not None, landing
        [form] = [f for f in forms(landing.page) if f["action"].startswith("/u/")]
        data = {**form["fields"], **fields}
        if action is not None:
            data["action"] = action
        return await self.go("POST", form["action"], data=data)

    async def login(self, landing: Landing, email: str, password: str = PASSWORD) -> Landing:
        return await self.submit(landing, email=email, password=password)


async def jwks_key(http: TestClient[web.Request, web.Application], host: str, token: str) -> Any:
    kid = jwt.get_unverified_header(token)["kid"]
    jwks = await (await http.get("/.well-known/jwks.json", headers={"Host": host})).json()
    [jwk] = [key for key in jwks["keys"] if key["kid"] == kid]
    return jwt.PyJWK(jwk).key


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def code_form(code: str, verifier: str, redirect_uri: str, **extra: str) -> dict[str, str]:
    """The token request redeeming an authorization code with its PKCE verifier (RFC 6749
    §4.1.3, RFC 7636 §4.5); `extra` adds members (client_id, resource, ...)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        **extra,
    }


async def token_request(
    http: TestClient[web.Request, web.Application],
    host: str,
    data: dict[str, str],
    auth: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST /oauth/token as `host`'s tenant, with Basic client credentials when `auth` is
    given; (status, JSON body)."""
    headers = {"Host": host}
    if auth is not None:
        headers["Authorization"] = basic_auth(*auth)
    response = await http.post("/oauth/token", data=data, headers=headers)
    return response.status, await response.json()


async def userinfo_request(
    http: TestClient[web.Request, web.Application], host: str, access_token: str
) -> tuple[int, dict[str, Any]]:
    response = await http.get(
        "/userinfo", headers={"Host": host, "Authorization": f"Bearer {access_token}"}
    )
    return response.status, await response.json()


@dataclass
class SignedIn:
    """What a code + PKCE sign-in gave the client: the token response, and the consent page
    the user saw (None when consent was remembered, or the client is first-party)."""

    tokens: dict[str, Any]
    consent_page: str | None


async def sign_in_with_code(
    env: AuthorizeEnv, browser: Browser, client: dict[str, Any], email: str, **params: str
) -> SignedIn:
    """Code + PKCE at `client` (its first redirect URI) in `browser`: the login page only
    without a session, the consent page only when asked (allowed), then the code redeemed
    with the client's secret. `params` add to (or replace) the authorization request's."""
    redirect_uri = client["redirect_uris"][0]
    verifier, challenge = pkce_pair()
    request = {
        "client_id": client["client_id"],
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    landing = await browser.authorize(**request)
    if landing.page is not None and "Sign in" in landing.page:
        landing = await browser.login(landing, email)
    consent = None
    if landing.page is not None and "Authorize application" in landing.page:
        consent = landing.page
        landing = await browser.submit(landing, action="allow")
    assert "code" in landing.params, landing
    status, body = await token_request(
        env.http,
        browser.host,
        code_form(landing.params["code"], verifier, redirect_uri),
        (client["client_id"], client["client_secret"]),
    )
    assert status == 200, body
    return SignedIn(dict(body), consent)
