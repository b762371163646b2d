"""Browser tests' equipment: Debian's Chromium driven by Playwright, the client's callback
page and a protected API (small aiohttp servers on 127.0.0.1), and the checks a client does
on what comes back (ID token against the JWKS, access token at an API).

Chromium is never downloaded: the tests use `/usr/bin/chromium` (CHROMIUM to override), which
`make test` installs, and fail (not skip) without it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from aiohttp import ClientTimeout, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.async_api import Browser, Cookie, Page, ViewportSize, async_playwright

from .gateway import APPOINTMENTS_API, Edge

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".local" / "artifacts" / "screenshots"
APP_HOST = "app.test"  # the implicit clients' https redirect host, mapped to 127.0.0.1
WAIT_MS = 15_000  # every browser wait is bounded


def require_chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium "
            "(`make test` installs it; or `apt-get install chromium`; or set CHROMIUM to "
            "another Chromium executable). Playwright's own browser download is not used.",
            pytrace=False,
        )
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; `app.test` resolves to 127.0.0.1 inside it."""
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1"],
            timeout=WAIT_MS * 2,
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def new_page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies: every test signs in), trusting the callback's
    self-signed certificate."""
    context = await browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def self_signed_tls(directory: Path, host: str = APP_HOST) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for `host` and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "callback.crt", directory / "callback.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@asynccontextmanager
async def serve(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """`app` on 127.0.0.1 on a free port (https with `tls`); yields the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@dataclass
class Hit:
    method: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class Callback:
    """The client's redirect URI, served by the test: it records what reached it."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)

    def app(self) -> web.Application:
        async def land(request: web.Request) -> web.Response:
            form = {k: str(v) for k, v in (await request.post()).items()}
            self.hits.append(Hit(request.method, dict(request.query), form))
            shown = "".join(
                f"<dt>{html.escape(k)}</dt><dd>{html.escape(v[:40])}</dd>"
                for k, v in {**request.query, **form}.items()
            )
            return web.Response(
                text=(
                    "<!doctype html><title>Back at the app</title><h1>Back at the app</h1>"
                    f"<dl>{shown}</dl>"
                ),
                content_type="text/html",
            )

        app = web.Application()
        app.router.add_route("GET", "/callback", land)
        app.router.add_route("POST", "/callback", land)
        return app


@asynccontextmanager
async def callback_server(base: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[Callback]:
    """A callback page on 127.0.0.1; `base` is how the client names it, with `{port}`
    (`https://app.test:{port}` or `http://127.0.0.1:{port}`)."""
    callback = Callback()
    async with serve(callback.app(), tls) as port:
        callback.url = base.format(port=port) + "/callback"
        yield callback


PHONE: ViewportSize = {"width": 390, "height": 844}


def check_page_headers(headers: dict[str, str]) -> None:
    """The provider's page headers, as they arrive through the gateway."""
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "script-src 'none'" in policy, headers
    assert headers.get("cache-control") == "no-store", headers
    assert headers.get("referrer-policy") == "no-referrer", headers


def check_session_cookies(cookies: list[Cookie]) -> None:
    """After login: a session cookie, and every cookie of the provider HttpOnly and
    SameSite=Lax (not Secure: the local issuer is http)."""
    names = {cookie.get("name") for cookie in cookies}
    assert "oidc_session" in names and len(names) >= 2, cookies  # and the /u/ binding
    for cookie in cookies:
        assert cookie.get("httpOnly") is True and cookie.get("sameSite") == "Lax", cookie


async def screenshot(page: Page, name: str, phone: bool) -> None:
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    if phone:
        desktop = page.viewport_size
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
        if desktop is not None:
            await page.set_viewport_size(desktop)


async def sign_in(
    page: Page, authorize_url: str, email: str, password: str, shots: str, phone: bool = False
) -> None:
    """Open `/authorize`, sign in by the form's labels, allow on the consent page; the two
    pages are kept as screenshots `{shots}-login.png` and `{shots}-consent.png` (with `phone`,
    also as a phone shows them, `{shots}-*-phone.png`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    response = await page.goto(authorize_url)
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert response is not None and response.status == 200, response
    check_page_headers(await response.all_headers())
    await screenshot(page, f"{shots}-login", phone)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("heading", name="Authorize application").wait_for()
    provider = urlsplit(authorize_url).hostname
    check_session_cookies([c for c in await page.context.cookies() if c.get("domain") == provider])
    await screenshot(page, f"{shots}-consent", phone)
    await page.get_by_role("button", name="Allow").click()


async def landed_at(page: Page, callback: Callback) -> dict[str, str]:
    """Wait until the browser shows the callback page; the parameters it brought, from the
    fragment, the query or the posted form (as the client's page would read them)."""
    await page.wait_for_url(lambda url: url.startswith(callback.url), wait_until="load")
    await page.get_by_role("heading", name="Back at the app").wait_for()
    assert callback.hits, "the callback server was never reached"
    hit = callback.hits[-1]
    parts = urlsplit(page.url)
    return {**dict(parse_qsl(parts.fragment)), **hit.query, **hit.form}


def half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6 / §3.2.2.9 for RS256: left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def verify_id_token(
    edge: Edge, id_token: str, client_id: str, nonce: str, access_token: str | None
) -> dict[str, Any]:
    """What a client checks on an ID token: RS256 signature by a key of the gateway's JWKS,
    `iss`, `aud`, `exp`/`iat`, `nonce`, and `at_hash` when an access token came with it."""
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256", header
    key = (await edge.jwks())[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key.key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=edge.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    assert claims["nonce"] == nonce, claims
    if isinstance(claims["aud"], list) and len(claims["aud"]) > 1:
        assert claims.get("azp") == client_id, claims
    if access_token is not None:
        assert claims["at_hash"] == half_hash(access_token), claims
    assert claims["sub"].startswith("auth0|"), claims
    return claims


class ProtectedApi:
    """A resource server for `appointments:api`, as its owner would write it: Bearer access
    tokens verified with the issuer's JWKS (RS256 signature, `iss`, `aud` containing
    `appointments:api`, `exp`) and the scope the route needs. 401 for a token it cannot
    accept, 403 for a good token without the scope (RFC 6750 §3.1)."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.keys: jwt.PyJWKSet | None = None
        self.base = ""

    def _refuse(
        self, status: int, error: str, description: str, scope: str | None = None
    ) -> web.HTTPException:
        challenge = f'Bearer realm="{APPOINTMENTS_API}", error="{error}"'
        if scope is not None:
            challenge += f', scope="{scope}"'
        cls = web.HTTPUnauthorized if status == 401 else web.HTTPForbidden
        return cls(
            headers={"WWW-Authenticate": challenge},
            text=f'{{"error": "{error}", "error_description": "{description}"}}',
            content_type="application/json",
        )

    async def _key(self, kid: str) -> Any:
        if self.keys is None or kid not in {k.key_id for k in self.keys.keys}:
            self.keys = await self.edge.jwks()
        try:
            return self.keys[kid].key
        except KeyError:
            raise self._refuse(401, "invalid_token", "Unknown signing key") from None

    async def _claims(self, request: web.Request, scope: str) -> dict[str, Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise self._refuse(401, "invalid_request", "Bearer token required")
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            claims: dict[str, Any] = jwt.decode(
                token,
                await self._key(kid),
                algorithms=["RS256"],
                audience=APPOINTMENTS_API,
                issuer=self.edge.issuer,
                options={"require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise self._refuse(401, "invalid_token", type(exc).__name__) from None
        if scope not in str(claims.get("scope", "")).split():
            raise self._refuse(403, "insufficient_scope", f"Scope required: {scope}", scope)
        return claims

    def app(self) -> web.Application:
        def route(scope: str) -> Any:
            async def handler(request: web.Request) -> web.Response:
                claims = await self._claims(request, scope)
                return web.json_response(
                    {"sub": claims["sub"], "scope": claims["scope"], "for": claims.get("azp")}
                )

            return handler

        app = web.Application()
        app.router.add_get("/appointments", route("appointments"))
        app.router.add_get("/contacts", route("contacts"))
        return app

    async def get(self, path: str, access_token: str | None) -> tuple[int, Any]:
        """`GET path` as a client calls it, with the access token as a Bearer token."""
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        async with self.edge.session.get(
            self.base + path, headers=headers, timeout=ClientTimeout(total=10)
        ) as response:
            return response.status, await response.json(content_type=None)


@asynccontextmanager
async def protected_api(edge: Edge) -> AsyncIterator[ProtectedApi]:
    api = ProtectedApi(edge)
    async with serve(api.app()) as port:
        api.base = f"http://127.0.0.1:{port}"
        yield api
