"""RP-initiated logout (issue 22): `/oidc/logout` ends the single sign-on session for every
client it signed in to, with `id_token_hint` at once, without one after a CSRF-protected
confirmation; bad input gets an error page and ends nothing. Real HTTP against an in-process
authorize service with real storage."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    Browser,
    Landing,
    add_client,
    add_user,
    forms,
    pkce_pair,
    sign_in_with_code,
)
from tests.support.tenants import bootstrap_tenant
from tests.support.tokens import tenant_signing_key

DOMAIN = "logout.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
BYE = "https://app.example.com/bye"
EMAIL = "ada@example.com"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        yield environment


@pytest.fixture
def browser(env: AuthorizeEnv) -> Browser:
    return Browser(env.http, DOMAIN)


async def _sign_in(env: AuthorizeEnv, browser: Browser, client: dict[str, Any]) -> dict[str, Any]:
    """Code + PKCE at `client` in `browser` (a login only when no session); the tokens."""
    return (await sign_in_with_code(env, browser, client, EMAIL, scope="openid", nonce="n")).tokens


async def _silent(browser: Browser, client: dict[str, Any]) -> Landing:
    """`prompt=none` at `client`: a code while the session lives, else login_required."""
    _, challenge = pkce_pair()
    return await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        scope="openid",
        prompt="none",
        code_challenge=challenge,
        code_challenge_method="S256",
    )


async def _logout(browser: Browser, **params: str) -> Any:
    response = await browser.http.get(
        "/oidc/logout", params=params, headers={"Host": DOMAIN}, allow_redirects=False
    )
    return response, await response.text()


async def test_logout_with_a_hint_ends_the_session_for_every_client(
    env: AuthorizeEnv, browser: Browser
) -> None:
    one = await add_client(env, post_logout_redirect_uris=[BYE])
    two = await add_client(env)
    tokens = await _sign_in(env, browser, one)
    await _sign_in(env, browser, two)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert isinstance(claims["sid"], str) and len(claims["sid"]) >= 22
    assert "code" in (await _silent(browser, two)).params
    response, _ = await _logout(
        browser,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=BYE,
        state="st 1",
        ui_locales="fr",
    )
    assert response.status == 303, response
    location = urlsplit(response.headers["Location"])
    assert location._replace(query="").geturl() == BYE
    assert dict(parse_qsl(location.query)) == {"state": "st 1"}
    assert (
        "Max-Age=0" in response.headers["Set-Cookie"]
        or "expires=" in response.headers["Set-Cookie"].lower()
    )
    for client in (one, two):
        assert (await _silent(browser, client)).params["error"] == "login_required"


async def test_without_a_hint_the_user_confirms(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env, post_logout_redirect_uris=[BYE])
    await _sign_in(env, browser, client)
    response, page = await _logout(browser, client_id=client["client_id"])
    assert response.status == 200 and "Sign out?" in page
    assert response.headers["X-Frame-Options"] == "DENY"
    [form] = [f for f in forms(page) if f["action"] == "/oidc/logout"]
    # A forged token ends nothing.
    forged = {**form["fields"], "csrf_token": "x" * 32, "action": "logout"}
    refused = await browser.go("POST", "/oidc/logout", data=forged)
    assert refused.status == 403
    assert "code" in (await _silent(browser, client)).params
    # "Stay signed in" ends nothing either.
    response, page = await _logout(browser)
    [form] = [f for f in forms(page) if f["action"] == "/oidc/logout"]
    stayed = await browser.go("POST", "/oidc/logout", data={**form["fields"], "action": "stay"})
    assert stayed.status == 200 and stayed.page is not None and "still signed in" in stayed.page
    assert "code" in (await _silent(browser, client)).params
    # Confirmed: signed out, the logged-out page links the connected apps.
    response, page = await _logout(browser)
    [form] = [f for f in forms(page) if f["action"] == "/oidc/logout"]
    done = await browser.go("POST", "/oidc/logout", data={**form["fields"], "action": "logout"})
    assert done.status == 200 and done.page is not None and "You are signed out" in done.page
    assert 'href="/u/apps"' in done.page
    assert (await _silent(browser, client)).params["error"] == "login_required"
    # The same confirmation twice: used up.
    again = await browser.go("POST", "/oidc/logout", data={**form["fields"], "action": "logout"})
    assert again.status == 403


async def test_a_confirmation_from_another_browser_ends_nothing(env: AuthorizeEnv) -> None:
    client = await add_client(env)
    attacker, victim = Browser(env.http, DOMAIN), Browser(env.http, DOMAIN)
    await _sign_in(env, attacker, client)
    _, page = await _logout(attacker)
    [form] = [f for f in forms(page) if f["action"] == "/oidc/logout"]
    attacker_cookies = env.http.session.cookie_jar
    attacker_cookies.clear()  # the victim's browser: its own session
    await _sign_in(env, victim, client)
    planted = await victim.go("POST", "/oidc/logout", data={**form["fields"], "action": "logout"})
    assert planted.status == 403
    assert "code" in (await _silent(victim, client)).params


async def test_bad_logout_requests_get_a_page_and_end_nothing(
    env: AuthorizeEnv, browser: Browser, settings_for: SettingsFactory
) -> None:
    client = await add_client(env, post_logout_redirect_uris=[BYE])
    other = await add_client(env)
    tokens = await _sign_in(env, browser, client)
    kid, key = await tenant_signing_key(env.settings, env.tenant.tenant_id)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    foreign_tenant = await bootstrap_tenant(env.settings, "other-tenant.example")
    other_kid, other_key = await tenant_signing_key(env.settings, foreign_tenant.tenant_id)
    other_issuer = jwt.encode(
        {**claims, "iss": "http://other-tenant.example/"},
        other_key,
        algorithm="RS256",
        headers={"kid": other_kid, "typ": "JWT"},
    )
    wrong_issuer = jwt.encode(
        {**claims, "iss": "http://evil.example/"}, key, algorithm="RS256", headers={"kid": kid}
    )
    cases: list[dict[str, str]] = [
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        {"client_id": client["client_id"], "post_logout_redirect_uri": BYE + "/"},
        {"client_id": other["client_id"], "post_logout_redirect_uri": BYE},
        {"post_logout_redirect_uri": BYE},
        {"id_token_hint": forged},
        {"id_token_hint": other_issuer},
        {"id_token_hint": wrong_issuer},
        {"id_token_hint": "not-a-jwt"},
        {"id_token_hint": tokens["access_token"]},
        {"id_token_hint": tokens["id_token"], "client_id": other["client_id"]},
        # state must come back unchanged: printable ASCII only (RFC 6749 A.5).
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE, "state": "\xff"},
    ]
    for params in cases:
        response, page = await _logout(browser, **params)
        assert response.status == 400, (params, page[:200])
        assert "Location" not in response.headers and "Sign-out failed" in page, params
        assert "code" in (await _silent(browser, client)).params, params
    # An expired hint is still a hint (RP-Initiated Logout §2).
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
        key,
        algorithm="RS256",
        headers={"kid": kid, "typ": "JWT"},
    )
    response, _ = await _logout(browser, id_token_hint=expired, post_logout_redirect_uri=BYE)
    assert response.status == 303
    assert (await _silent(browser, client)).params["error"] == "login_required"


async def test_auth0_legacy_logout(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env, post_logout_redirect_uris=[BYE])
    tokens = await _sign_in(env, browser, client)
    response = await env.http.get(
        "/v2/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "client_id": client["client_id"],
            "returnTo": BYE,
        },
        headers={"Host": DOMAIN},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == BYE
    assert (await _silent(browser, client)).params["error"] == "login_required"


async def test_front_channel_logout_frames_each_client(env: AuthorizeEnv, browser: Browser) -> None:
    """Front-Channel Logout 1.0: the page frames each client's frontchannel_logout_uri with
    iss and sid, the CSP allows exactly those origins, and the page goes on to the
    post_logout_redirect_uri."""
    fc = "https://app.example.com/frontchannel?app=1"
    client = await add_client(env, post_logout_redirect_uris=[BYE], frontchannel_logout_uri=fc)
    plain = await add_client(env)
    tokens = await _sign_in(env, browser, client)
    await _sign_in(env, browser, plain)
    sid = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    response, page = await _logout(
        browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE, state="s2"
    )
    assert response.status == 200 and "You are signed out" in page
    expected = f"{fc}&amp;iss=http%3A%2F%2Flogout.example%2F&amp;sid={sid}"
    assert f'<iframe class="frontchannel" src="{expected}"' in page
    assert page.count("<iframe") == 1
    policy = response.headers["Content-Security-Policy"]
    assert "frame-src https://app.example.com" in policy and "frame-ancestors 'none'" in policy
    assert f'content="3;url={BYE}?state=s2"' in page and f'href="{BYE}?state=s2"' in page
    assert (await _silent(browser, client)).params["error"] == "login_required"


async def test_a_consent_page_left_open_grants_nothing_after_logout(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A second review: a consent page opened before logout once still issued a code after
    it (on a shared computer, the next person would get the previous user's tokens)."""
    first = await add_client(env)
    second = await add_client(env)
    tokens = await _sign_in(env, browser, first)
    _, challenge = pkce_pair()
    consent = await browser.authorize(
        client_id=second["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert consent.page is not None and "Authorize application" in consent.page
    response, _ = await _logout(browser, id_token_hint=tokens["id_token"])
    assert response.status == 200
    allowed = await browser.submit(consent, action="allow")
    assert allowed.url is None and allowed.status == 400, allowed
    assert allowed.page is not None and "Sign-in expired" in allowed.page


async def test_a_cross_site_post_without_the_cookie_still_ends_the_hinted_session(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A second review: a cross-site POST carries no SameSite=Lax cookie; the RP was sent
    back as if signed out while the session lived on. The hint's sid ends it."""
    client = await add_client(env, post_logout_redirect_uris=[BYE])
    tokens = await _sign_in(env, browser, client)
    jar = env.http.session.cookie_jar
    [cookie] = [c for c in jar if c.key == "oidc_session"]
    jar.clear()  # the POST arrives without the session cookie
    response = await env.http.post(
        "/oidc/logout",
        data={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE, "state": "x"},
        headers={"Host": DOMAIN},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == f"{BYE}?state=x"
    jar.update_cookies({"oidc_session": cookie.value}, env.http.make_url("/"))
    assert (await _silent(browser, client)).params["error"] == "login_required"


async def test_without_a_hint_there_is_no_post_logout_redirection(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A third review: any self-registered client could list any site as its logout URI and
    send browsers there through /oidc/logout or /v2/logout without an ID token (§3)."""
    evil = await add_client(env, post_logout_redirect_uris=["https://evil.example/landing"])
    for path, params in (
        (
            "/oidc/logout",
            {
                "client_id": evil["client_id"],
                "post_logout_redirect_uri": "https://evil.example/landing",
                "state": "x",
            },
        ),
        (
            "/v2/logout",
            {"client_id": evil["client_id"], "returnTo": "https://evil.example/landing"},
        ),
    ):
        response = await env.http.get(
            path, params=params, headers={"Host": DOMAIN}, allow_redirects=False
        )
        page = await response.text()
        assert response.status == 200 and "Location" not in response.headers, path
        assert "evil.example" not in page and "You are signed out" in page, path


async def test_a_hint_without_a_sid_asks_before_ending_a_session(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A third review: an ID token without `sid` (a refreshed one, or one of an earlier
    session) ended whatever session the user had, unasked."""
    client = await add_client(env, post_logout_redirect_uris=[BYE])
    tokens = await _sign_in(env, browser, client)
    kid, key = await tenant_signing_key(env.settings, env.tenant.tenant_id)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    del claims["sid"]
    sidless = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    response, page = await _logout(browser, id_token_hint=sidless, post_logout_redirect_uri=BYE)
    assert response.status == 200 and "Sign out?" in page
    assert "code" in (await _silent(browser, client)).params
