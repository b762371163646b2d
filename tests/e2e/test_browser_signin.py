"""Sign-in in a real browser (headless Debian Chromium, driven by Playwright) through the nginx
gateway, with the services as processes: a client registered through `POST /oidc/register`
sends the user to `/authorize`, the user signs in and consents, the browser lands on the
client's callback page (served by this test on 127.0.0.1), and the client verifies and uses
what it got: the ID token against the JWKS, `/userinfo`, and a protected API.

The implicit clients are `web` clients, so their redirect URI is https and not loopback:
`https://app.test:{port}/callback`, a self-signed callback server that Chromium reaches
through a host-resolver rule. The code-flow clients use `http://127.0.0.1:{port}/callback`.
Screenshots of each login and consent page: .local/artifacts/screenshots/.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from playwright.async_api import Page

from tests.support.browser import (
    APP_HOST,
    Callback,
    ProtectedApi,
    callback_server,
    landed_at,
    protected_api,
    self_signed_tls,
    sign_in,
    verify_id_token,
)
from tests.support.gateway import APPOINTMENTS_API, Edge, SignInTenant, pkce_pair
from tests.support.signin import code_form


@pytest.fixture(scope="module")
async def api(edge: Edge) -> AsyncIterator[ProtectedApi]:
    async with protected_api(edge) as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def https_callback(tls: ssl.SSLContext) -> AsyncIterator[Callback]:
    async with callback_server(f"https://{APP_HOST}:{{port}}", tls) as callback:
        yield callback


def authorize_url(edge: Edge, *params: tuple[str, str]) -> str:
    """The link a client puts in front of the user, parameters in the order given (spaces as
    %20, `:` and `/` left as they are, like the seed's link)."""
    query = "&".join(f"{name}={quote(value, safe=':/')}" for name, value in params)
    return f"{edge.origin}/authorize?{query}"


async def check_userinfo(edge: Edge, access_token: str, sub: str, email: str | None) -> None:
    status, info = await edge.userinfo(access_token)
    assert status == 200, info
    assert info["sub"] == sub, info
    if email is not None:
        assert info["email"] == email and info["email_verified"] is True, info


def access_claims(token: str) -> dict[str, Any]:
    """The access token's claims, unverified (the protected API verifies them)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def test_seed_link_id_token_token(
    edge: Edge,
    tenant: SignInTenant,
    page: Page,
    https_callback: Callback,
    api: ProtectedApi,
) -> None:
    client = await edge.register(
        {
            "client_name": "Appointments (seed link)",
            "redirect_uris": [https_callback.url],
            "response_types": ["id_token token"],
            "token_endpoint_auth_method": "none",
        }
    )
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(12)
    url = authorize_url(
        edge,
        ("scope", "openid appointments contacts"),
        ("audience", APPOINTMENTS_API),
        ("response_type", "id_token token"),
        ("client_id", client["client_id"]),
        ("redirect_uri", https_callback.url),
        ("nonce", nonce),
        ("state", state),
    )
    await sign_in(
        page, url, tenant.email, tenant.password, "a-seed-link-id_token-token", phone=True
    )
    params = await landed_at(page, https_callback)

    # The default response mode of `id_token token` is the fragment: the tokens stay in the
    # browser, the callback server saw a plain GET.
    assert https_callback.hits[-1].method == "GET" and https_callback.hits[-1].query == {}
    assert page.url.startswith(https_callback.url + "#")
    assert params["state"] == state and params["iss"] == edge.issuer, params
    assert params["token_type"].lower() == "bearer" and int(params["expires_in"]) > 0, params
    access_token = params["access_token"]
    claims = await verify_id_token(
        edge, params["id_token"], client["client_id"], nonce, access_token
    )
    access = access_claims(access_token)
    assert APPOINTMENTS_API in access["aud"] and access["azp"] == client["client_id"], access
    assert access["scope"].split() == ["openid", "appointments", "contacts"], access
    assert access["sub"] == claims["sub"]

    await check_userinfo(edge, access_token, claims["sub"], None)
    for path in ("/appointments", "/contacts"):
        status, body = await api.get(path, access_token)
        assert status == 200 and body["sub"] == claims["sub"], body
    # The ID token is for the client, not for the API: refused, as is no token at all.
    status, body = await api.get("/appointments", params["id_token"])
    assert status == 401 and body["error"] == "invalid_token", body
    status, body = await api.get("/appointments", None)
    assert status == 401, body


async def test_id_token_token_form_post(
    edge: Edge,
    tenant: SignInTenant,
    page: Page,
    https_callback: Callback,
    api: ProtectedApi,
) -> None:
    client = await edge.register(
        {
            "client_name": "Appointments (form_post)",
            "redirect_uris": [https_callback.url],
            "response_types": ["id_token token"],
            "token_endpoint_auth_method": "none",
        }
    )
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(12)
    url = authorize_url(
        edge,
        ("response_type", "id_token token"),
        ("response_mode", "form_post"),
        ("client_id", client["client_id"]),
        ("redirect_uri", https_callback.url),
        ("scope", "openid email appointments"),
        ("audience", APPOINTMENTS_API),
        ("nonce", nonce),
        ("state", state),
    )
    await sign_in(page, url, tenant.email, tenant.password, "b-id_token-token-form_post")
    params = await landed_at(page, https_callback)

    # The provider's page posted the response to the callback (its script, allowed by the
    # page's CSP nonce): nothing in the URL.
    hit = https_callback.hits[-1]
    assert hit.method == "POST" and hit.query == {}, hit
    assert page.url == https_callback.url
    assert {"id_token", "access_token", "token_type", "state", "iss"} <= set(hit.form), hit
    assert params["state"] == state and params["iss"] == edge.issuer, params
    access_token = params["access_token"]
    claims = await verify_id_token(
        edge, params["id_token"], client["client_id"], nonce, access_token
    )

    await check_userinfo(edge, access_token, claims["sub"], tenant.email)
    status, body = await api.get("/appointments", access_token)
    assert status == 200 and body["scope"].split() == ["openid", "email", "appointments"], body
    # `contacts` was not asked for, so the token does not carry it.
    status, body = await api.get("/contacts", access_token)
    assert status == 403 and body["error"] == "insufficient_scope", body


async def test_token_alone(
    edge: Edge,
    tenant: SignInTenant,
    page: Page,
    https_callback: Callback,
    api: ProtectedApi,
) -> None:
    client = await edge.register(
        {
            "client_name": "Appointments (token)",
            "redirect_uris": [https_callback.url],
            "response_types": ["token"],
            "token_endpoint_auth_method": "none",
        }
    )
    state = secrets.token_urlsafe(12)
    url = authorize_url(
        edge,
        ("response_type", "token"),
        ("client_id", client["client_id"]),
        ("redirect_uri", https_callback.url),
        ("scope", "openid appointments contacts"),
        ("audience", APPOINTMENTS_API),
        ("state", state),
    )
    await sign_in(page, url, tenant.email, tenant.password, "c-token")
    params = await landed_at(page, https_callback)

    assert page.url.startswith(https_callback.url + "#")
    assert "id_token" not in params and "code" not in params, params
    assert params["state"] == state and params["iss"] == edge.issuer, params
    access_token = params["access_token"]
    access = access_claims(access_token)
    assert access["iss"] == edge.issuer and APPOINTMENTS_API in access["aud"], access

    await check_userinfo(edge, access_token, access["sub"], None)
    status, body = await api.get("/contacts", access_token)
    assert status == 200 and body["sub"] == access["sub"], body
    # The same token with its signature altered: refused.
    head, payload, signature = access_token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    status, body = await api.get("/contacts", forged)
    assert status == 401 and body["error"] == "invalid_token", body


async def test_code_pkce_public_client(
    edge: Edge,
    tenant: SignInTenant,
    page: Page,
    loopback_callback: Callback,
    api: ProtectedApi,
) -> None:
    client = await edge.register(
        {
            "client_name": "Appointments (public, code + PKCE)",
            "redirect_uris": [loopback_callback.url],
            "token_endpoint_auth_method": "none",
        }
    )
    assert "client_secret" not in client
    verifier, challenge = pkce_pair()
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(12)
    url = authorize_url(
        edge,
        ("response_type", "code"),
        ("client_id", client["client_id"]),
        ("redirect_uri", loopback_callback.url),
        ("scope", "openid email profile appointments"),
        ("audience", APPOINTMENTS_API),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    )
    await sign_in(page, url, tenant.email, tenant.password, "d-code-pkce-public")
    params = await landed_at(page, loopback_callback)

    assert loopback_callback.hits[-1].method == "GET" and "#" not in page.url
    assert set(params) == {"code", "state", "iss"}, params
    assert params["state"] == state and params["iss"] == edge.issuer, params
    status, tokens = await edge.token(
        code_form(params["code"], verifier, loopback_callback.url, client_id=client["client_id"])
    )
    assert status == 200, tokens
    assert tokens["token_type"].lower() == "bearer" and "refresh_token" not in tokens, tokens
    access_token = tokens["access_token"]
    claims = await verify_id_token(
        edge, tokens["id_token"], client["client_id"], nonce, access_token
    )
    assert claims["email"] == tenant.email and claims["name"] == "Ada Lovelace", claims

    await check_userinfo(edge, access_token, claims["sub"], tenant.email)
    status, body = await api.get("/appointments", access_token)
    assert status == 200 and body["for"] == client["client_id"], body
    status, body = await api.get("/contacts", access_token)
    assert status == 403 and body["error"] == "insufficient_scope", body


async def test_code_pkce_confidential_basic_offline_access_then_refresh(
    edge: Edge,
    tenant: SignInTenant,
    page: Page,
    loopback_callback: Callback,
    api: ProtectedApi,
) -> None:
    client = await edge.register(
        {
            "client_name": "Appointments (confidential, code + PKCE)",
            "redirect_uris": [loopback_callback.url],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
    )
    basic = (client["client_id"], client["client_secret"])
    verifier, challenge = pkce_pair()
    nonce, state = secrets.token_urlsafe(16), secrets.token_urlsafe(12)
    url = authorize_url(
        edge,
        ("response_type", "code"),
        ("client_id", client["client_id"]),
        ("redirect_uri", loopback_callback.url),
        ("scope", "openid email offline_access appointments contacts"),
        ("audience", APPOINTMENTS_API),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    )
    await sign_in(page, url, tenant.email, tenant.password, "e-code-pkce-confidential")
    params = await landed_at(page, loopback_callback)
    assert params["state"] == state and params["iss"] == edge.issuer, params

    form = code_form(params["code"], verifier, loopback_callback.url)
    # Without its client authentication the code is not redeemed (and stays unused).
    status, refused = await edge.token({**form, "client_id": client["client_id"]})
    assert status == 401 and refused["error"] == "invalid_client", refused
    status, tokens = await edge.token(form, basic)
    assert status == 200, tokens
    first_refresh = tokens["refresh_token"]
    claims = await verify_id_token(
        edge, tokens["id_token"], client["client_id"], nonce, tokens["access_token"]
    )
    assert access_claims(tokens["access_token"])["scope"].split() == [
        "openid",
        "email",
        "offline_access",
        "appointments",
        "contacts",
    ]
    await check_userinfo(edge, tokens["access_token"], claims["sub"], tenant.email)
    status, body = await api.get("/contacts", tokens["access_token"])
    assert status == 200, body
    # A token for another audience (the Management API's) is refused by the API.
    status, body = await api.get("/contacts", tenant.management_token)
    assert status == 401 and body["error"] == "invalid_token", body

    status, refreshed = await edge.token(
        {"grant_type": "refresh_token", "refresh_token": first_refresh}, basic
    )
    assert status == 200, refreshed
    assert refreshed["refresh_token"] != first_refresh  # rotated
    assert refreshed["access_token"] != tokens["access_token"]
    if "id_token" in refreshed:
        fresh = jwt.decode(
            refreshed["id_token"],
            (await edge.jwks())[jwt.get_unverified_header(refreshed["id_token"])["kid"]].key,
            algorithms=["RS256"],
            audience=client["client_id"],
            issuer=edge.issuer,
        )
        assert fresh["sub"] == claims["sub"], fresh
    await check_userinfo(edge, refreshed["access_token"], claims["sub"], tenant.email)
    status, body = await api.get("/appointments", refreshed["access_token"])
    assert status == 200 and body["sub"] == claims["sub"], body

    # The rotated token is spent: presenting it again is refused and revokes the family (the
    # provider stops honouring the newest refresh token and its access token at /userinfo).
    status, reused = await edge.token(
        {"grant_type": "refresh_token", "refresh_token": first_refresh}, basic
    )
    assert status == 400 and reused["error"] == "invalid_grant", reused
    status, after = await edge.token(
        {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}, basic
    )
    assert status == 400 and after["error"] == "invalid_grant", after
    status, info = await edge.userinfo(refreshed["access_token"])
    assert status == 401, info
