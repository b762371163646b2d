"""`/authorize`, login and consent pages, the code exchange, refresh and `/userinfo`, over
real HTTP against an in-process authorize service (MongoDB and Redis real)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jwt
import pytest

from authorize_service.interaction.throttle import MAX_FAILURES_PER_PAIR
from authorize_service.resources import REVOCATIONS, TENANT_SETTINGS, USERS
from authorize_service.tokens.refresh_tokens import REFRESH_TOKEN_TTL
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    PASSWORD,
    Browser,
    Landing,
    add_api,
    add_client,
    add_user,
    code_form,
    jwks_key,
    pkce_pair,
    token_request,
    userinfo_request,
)
from tests.support.tokens import management_token

DOMAIN = "signin.example"
ISSUER = f"http://{DOMAIN}/"
CALLBACK = "https://app.example.com/callback"
EMAIL = "ada@example.com"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        await add_api(environment)
        yield environment


@pytest.fixture
def browser(env: AuthorizeEnv) -> Browser:
    return Browser(env.http, DOMAIN)


def half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def id_token_claims(env: AuthorizeEnv, token: str, client_id: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        await jwks_key(env.http, DOMAIN, token),
        algorithms=["RS256"],
        audience=client_id,
        issuer=ISSUER,
    )
    return claims


async def sign_in(browser: Browser, landing: Landing, consent: bool = True) -> Landing:
    assert landing.page is not None and "Sign in" in landing.page, landing
    landing = await browser.login(landing, EMAIL)
    if consent:
        assert landing.page is not None and "Authorize application" in landing.page, landing
        landing = await browser.submit(landing, action="allow")
    return landing


async def token(
    env: AuthorizeEnv, data: dict[str, str], auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    return await token_request(env.http, DOMAIN, data, auth)


async def userinfo(env: AuthorizeEnv, access_token: str) -> tuple[int, dict[str, Any]]:
    return await userinfo_request(env.http, DOMAIN, access_token)


async def code_flow(
    env: AuthorizeEnv,
    browser: Browser,
    client: dict[str, Any],
    scope: str = "openid email profile",
    **extra: str,
) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=client["redirect_uris"][0],
        response_type="code",
        scope=scope,
        state="s1",
        nonce="n1",
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )
    if landing.page is not None:
        landing = await sign_in(browser, landing)
    assert landing.url is not None and landing.url.startswith(client["redirect_uris"][0] + "?"), (
        landing
    )
    assert landing.params["state"] == "s1" and landing.params["iss"] == ISSUER
    return landing.params["code"], verifier


# ----------------------------------------------------------------------------- happy paths


async def test_code_pkce_public_client_signs_in_and_reads_userinfo(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(
        env, token_endpoint_auth_method="none", grant_types=["authorization_code"]
    )
    code, verifier = await code_flow(env, browser, client)
    status, body = await token(
        env,
        code_form(code, verifier, CALLBACK, client_id=client["client_id"]),
    )
    assert status == 200, body
    assert "refresh_token" not in body
    claims = await id_token_claims(env, body["id_token"], client["client_id"])
    assert claims["nonce"] == "n1" and claims["email"] == EMAIL and claims["name"] == "Ada Lovelace"
    assert claims["sub"].startswith("auth0|") and claims["at_hash"] == half_hash(
        body["access_token"]
    )
    status, info = await userinfo(env, body["access_token"])
    assert status == 200 and info["sub"] == claims["sub"] and info["email_verified"] is True
    used = await env.db[Collections.CLIENTS].find_one({"_id": client["client_id"]})
    assert used is not None and used["last_used_at"] is not None


async def test_seed_implicit_link_with_openid_and_nonce(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(
        env,
        grant_types=["implicit"],
        response_types=["id_token token"],
        token_endpoint_auth_method="none",
    )
    landing = await browser.authorize(
        scope="openid appointments contacts",
        audience="appointments:api",
        response_type="id_token token",
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        nonce="seed-nonce",
        state="xyz",
    )
    landing = await sign_in(browser, landing)
    assert landing.url is not None and landing.url.startswith(CALLBACK + "#"), landing
    params = landing.params
    assert params["state"] == "xyz" and params["token_type"] == "Bearer" and params["iss"] == ISSUER
    claims = await id_token_claims(env, params["id_token"], client["client_id"])
    assert claims["nonce"] == "seed-nonce" and claims["at_hash"] == half_hash(
        params["access_token"]
    )
    access = jwt.decode(
        params["access_token"],
        await jwks_key(env.http, DOMAIN, params["access_token"]),
        algorithms=["RS256"],
        audience="appointments:api",
        issuer=ISSUER,
    )
    assert (
        access["scope"] == "openid appointments contacts" and access["azp"] == client["client_id"]
    )
    assert access["aud"] == ["appointments:api", f"{ISSUER}userinfo"]


async def test_seed_link_exactly_as_printed_is_refused_naming_what_is_missing(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env, grant_types=["implicit"], response_types=["id_token token"])
    landing = await browser.authorize(
        scope="appointments contacts",
        audience="appointments:api",
        response_type="id_token token",
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
    )
    assert landing.url is not None and landing.url.startswith(CALLBACK + "#")
    assert landing.params["error"] == "invalid_request"
    assert "openid scope" in landing.params["error_description"]
    assert "nonce" in landing.params["error_description"]
    assert landing.params["iss"] == ISSUER


async def test_form_post_and_token_alone(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(
        env,
        grant_types=["implicit"],
        response_types=["token", "id_token token"],
    )
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="id_token token",
        response_mode="form_post",
        scope="openid",
        nonce="n",
        state="st",
    )
    landing = await sign_in(browser, landing)
    assert landing.page is not None and landing.url == CALLBACK, landing
    assert {"id_token", "access_token", "state", "iss"} <= set(landing.params)
    assert landing.response is not None
    csp = landing.response.headers["Content-Security-Policy"]
    # No form-action on pages that lead to the client: browsers apply it to the redirects
    # after the form too (a native [::1] callback, a callback redirecting elsewhere).
    assert "script-src 'nonce-" in csp and "form-action" not in csp
    # token alone, remembered consent: straight back, no page.
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="token",
        scope="openid",
    )
    assert (
        landing.url is not None
        and "access_token" in landing.params
        and "id_token" not in landing.params
    )


async def test_confidential_basic_offline_access_refresh_rotation_and_reuse(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    code, verifier = await code_flow(env, browser, client, scope="openid offline_access")
    auth = (client["client_id"], client["client_secret"])
    status, body = await token(
        env,
        code_form(code, verifier, CALLBACK),
        auth,
    )
    assert status == 200 and body["refresh_token"], body
    first = body["refresh_token"]
    status, refreshed = await token(
        env, {"grant_type": "refresh_token", "refresh_token": first}, auth
    )
    assert status == 200 and refreshed["refresh_token"] != first, refreshed
    assert (await userinfo(env, refreshed["access_token"]))[0] == 200
    # Reusing the rotated token revokes the family: its successor and access tokens stop.
    status, reused = await token(env, {"grant_type": "refresh_token", "refresh_token": first}, auth)
    assert status == 400 and reused["error"] == "invalid_grant"
    status, after = await token(
        env, {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}, auth
    )
    assert status == 400 and after["error"] == "invalid_grant"
    assert (await userinfo(env, refreshed["access_token"]))[0] == 401
    client_doc = await env.db[Collections.CLIENTS].find_one({"_id": client["client_id"]})
    assert client_doc is not None and client_doc["refresh_tokens_live_until"] is not None


# --------------------------------------------------------------------------- code exchange


async def test_code_replay_is_refused_and_revokes_the_first_tokens(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    auth = (client["client_id"], client["client_secret"])
    code, verifier = await code_flow(env, browser, client, scope="openid offline_access")
    form = code_form(code, verifier, CALLBACK)
    status, body = await token(env, form, auth)
    assert status == 200
    status, again = await token(env, form, auth)
    assert status == 400 and again["error"] == "invalid_grant"
    assert (await userinfo(env, body["access_token"]))[0] == 401
    status, refresh = await token(
        env, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, auth
    )
    assert status == 400 and refresh["error"] == "invalid_grant"
    # The revocation marker outlives the longest token it guards (the family's refresh tokens).
    revoked = env.app[REVOCATIONS]
    grant_id = jwt.decode(body["access_token"], options={"verify_signature": False})["jti"]
    ttl = await revoked._redis.ttl(revoked.key(grant_id.split(".", 1)[0]))
    assert ttl >= REFRESH_TOKEN_TTL.total_seconds() - 60, ttl


@pytest.mark.parametrize(
    "case", ["wrong_verifier", "no_verifier", "other_client", "other_redirect"]
)
async def test_code_exchange_bindings(env: AuthorizeEnv, browser: Browser, case: str) -> None:
    client = await add_client(env, redirect_uris=[CALLBACK, CALLBACK + "2"])
    other = await add_client(env)
    code, verifier = await code_flow(env, browser, client)
    form = code_form(code, verifier, CALLBACK)
    auth = (client["client_id"], client["client_secret"])
    if case == "wrong_verifier":
        form["code_verifier"] = pkce_pair()[0]
    elif case == "no_verifier":
        del form["code_verifier"]
    elif case == "other_client":
        auth = (other["client_id"], other["client_secret"])
    else:
        form["redirect_uri"] = CALLBACK + "2"
    status, body = await token(env, form, auth)
    assert status == 400 and body["error"] == "invalid_grant", body


# ------------------------------------------------------------------ errors shown as a page


async def _expect_page(landing: Landing, text: str) -> None:
    assert landing.url is None and landing.page is not None, landing
    assert landing.status == 400 and text in landing.page


async def test_unknown_client_and_bad_redirect_uris_show_a_page(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    base = {"response_type": "code", "scope": "openid"}
    await _expect_page(
        await browser.authorize(**base, client_id="nope", redirect_uri=CALLBACK),
        "Unknown application",
    )
    await _expect_page(
        await browser.authorize(**base, client_id=client["client_id"]),
        "redirect_uri parameter is missing",
    )
    for variant in (
        "https://APP.example.com/callback",
        "HTTPS://app.example.com/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x=1",
        "https://user@app.example.com/callback",
        "https://app.example.com/x/../callback",
        "https://app.example.com:8443/callback",
        "https://app.example.com/callback#f",
        "https://evil.example/callback",
    ):
        landing = await browser.authorize(
            **base, client_id=client["client_id"], redirect_uri=variant
        )
        await _expect_page(landing, "Invalid redirect URI")


async def test_loopback_any_port_only_for_native_clients(
    env: AuthorizeEnv, browser: Browser
) -> None:
    native = await add_client(
        env,
        application_type="native",
        token_endpoint_auth_method="none",
        redirect_uris=["http://127.0.0.1/cb"],
        grant_types=["authorization_code"],
    )
    web_client = await add_client(env, redirect_uris=["http://127.0.0.1:8000/cb"])
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=native["client_id"],
        redirect_uri="http://127.0.0.1:51234/cb",
        response_type="code",
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert landing.page is not None and "Sign in" in landing.page
    landing = await browser.authorize(
        client_id=web_client["client_id"],
        redirect_uri="http://127.0.0.1:8001/cb",
        response_type="code",
    )
    await _expect_page(landing, "Invalid redirect URI")


async def test_reaped_client_gets_the_page(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env)
    await env.db[Collections.CLIENTS].update_one(
        {"_id": client["client_id"]}, {"$set": {"reaped_at": 1}}
    )
    landing = await browser.authorize(
        client_id=client["client_id"], redirect_uri=CALLBACK, response_type="code"
    )
    await _expect_page(landing, "Unknown application")


# ------------------------------------------------------------- errors sent to the client


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unauthorized_client"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        (
            {"response_type": "code", "code_challenge_method": "plain", "code_challenge": "x" * 43},
            "invalid_request",
        ),
        ({"response_type": "code"}, "invalid_request"),  # PKCE required by default
        ({"response_type": "code", "prompt": "none login"}, "invalid_request"),
        ({"response_type": "code", "max_age": "-1"}, "invalid_request"),
        ({"response_type": "code", "request": "eyJ"}, "request_not_supported"),
        ({"response_type": "code", "audience": "unknown:api"}, "access_denied"),
        ({"response_type": "code", "response_mode": "bogus"}, "invalid_request"),
    ],
)
async def test_request_errors_go_back_to_the_client(
    env: AuthorizeEnv, browser: Browser, params: dict[str, str], error: str
) -> None:
    client = await add_client(env)
    _, challenge = pkce_pair()
    if (
        params.get("response_type") == "code"
        and "code_challenge" not in params
        and error != "invalid_request"
    ):
        params = {**params, "code_challenge": challenge, "code_challenge_method": "S256"}
    landing = await browser.authorize(
        client_id=client["client_id"], redirect_uri=CALLBACK, state="st", **params
    )
    assert landing.url is not None and landing.params["error"] == error, landing
    assert landing.params["state"] == "st" and landing.params["iss"] == ISSUER


async def test_prompt_none_login_required_then_consent_required(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env, response_types=["code"])
    _, challenge = pkce_pair()
    params = {
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    landing = await browser.authorize(**params, prompt="none")
    assert landing.params["error"] == "login_required"
    # Sign in through another client, so a session exists but this client has no consent.
    other = await add_client(env)
    await code_flow(env, browser, other)
    landing = await browser.authorize(**params, prompt="none")
    assert landing.params["error"] == "consent_required"


async def test_consent_denied_and_remembered_and_prompt_consent(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    _, challenge = pkce_pair()
    params = {
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    landing = await browser.login(await browser.authorize(**params), EMAIL)
    denied = await browser.submit(landing, action="deny")
    assert denied.params["error"] == "access_denied" and denied.params["iss"] == ISSUER
    landing = await browser.authorize(**params)
    assert landing.page is not None and "Authorize application" in landing.page  # session kept
    allowed = await browser.submit(landing, action="allow")
    assert "code" in allowed.params
    assert "code" in (await browser.authorize(**params)).params  # remembered
    again = await browser.authorize(**params, prompt="consent")
    assert again.page is not None and "Authorize application" in again.page


# ------------------------------------------------------------------------ page security


async def test_csrf_token_missing_or_wrong_is_refused(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env)
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    wrong = await browser.submit(landing, csrf_token="forged", email=EMAIL, password=PASSWORD)
    assert wrong.status == 403 and wrong.url is None
    assert landing.page is not None
    state = landing.page.split('name="state" value="')[1].split('"')[0]
    response = await env.http.post(
        "/u/login",
        data={"state": state, "email": EMAIL, "password": PASSWORD},
        headers={"Host": DOMAIN},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_login_throttle_and_same_answer_for_unknown_email(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    unknown = await browser.login(landing, "nobody@example.com", "whatever-password")
    wrong = await browser.login(landing, EMAIL, "not-the-password")
    assert unknown.status == wrong.status == 401
    assert unknown.page is not None and wrong.page is not None
    assert "Wrong email or password." in unknown.page and "Wrong email or password." in wrong.page
    for _ in range(MAX_FAILURES_PER_PAIR - 1):
        wrong = await browser.login(landing, EMAIL, "not-the-password")
    blocked = await browser.login(landing, EMAIL)  # right password, but throttled
    assert blocked.status == 429 and blocked.url is None
    assert blocked.response is not None
    assert 0 < int(blocked.response.headers["Retry-After"]) <= 900


async def test_pages_escape_client_metadata_and_send_security_headers(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(
        env,
        client_name="<script>alert(1)</script>",
        logo_uri='https://app.example.com/logo.png"onerror="alert(1)',
    )
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert landing.page is not None and "<script>alert(1)</script>" not in landing.page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in landing.page
    consent = await browser.login(landing, EMAIL)
    assert (
        consent.page is not None
        and '"onerror="' not in consent.page
        and "&#34;onerror=&#34;" in consent.page
    )
    assert "unverified application" in consent.page.lower() and "app.example.com" in consent.page
    for page in (landing, consent):
        assert page.response is not None
        headers = page.response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'none'" in headers["Content-Security-Policy"]
        assert (
            headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
        )
        assert headers["X-Frame-Options"] == "DENY"


async def test_login_mints_a_new_session_id(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env)
    planted = "attacker-chosen-session-id-0123456789"
    env.http.session.cookie_jar.update_cookies({"oidc_session": planted})
    await code_flow(env, browser, client)
    cookies = {cookie.key: cookie.value for cookie in env.http.session.cookie_jar}
    assert cookies["oidc_session"] != planted


async def test_discovery_tells_the_truth(env: AuthorizeEnv) -> None:
    metadata = await (
        await env.http.get("/.well-known/openid-configuration", headers={"Host": DOMAIN})
    ).json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert set(metadata["response_types_supported"]) == {
        "code",
        "token",
        "id_token",
        "id_token token",
    }
    assert metadata["prompt_values_supported"] == ["consent", "login", "none"]


async def test_api_token_lifetime_and_user_deletion_revoke(
    env: AuthorizeEnv, browser: Browser
) -> None:
    await add_api(
        env,
        "https://short.example/api",
        name="Short",
        scopes=[("read", "")],
        token_lifetime=120,
        allow_offline_access=True,
    )
    client = await add_client(env)
    auth = (client["client_id"], client["client_secret"])
    code, verifier = await code_flow(
        env,
        browser,
        client,
        scope="openid read offline_access",
        audience="https://short.example/api",
    )
    status, body = await token(
        env,
        code_form(code, verifier, CALLBACK),
        auth,
    )
    assert (
        status == 200
        and body["expires_in"] == 120
        and body["scope"] == "openid read offline_access"
    )
    user = await env.app[USERS].find_by_email(env.tenant.tenant_id, EMAIL)
    assert user is not None
    bearer = await management_token(env.settings, env.tenant.tenant_id, ISSUER)
    deleted = await env.http.delete(
        f"/api/v2/users/{user.user_id}",
        headers={"Host": DOMAIN, "Authorization": f"Bearer {bearer}"},
    )
    assert deleted.status == 204
    status, refreshed = await token(
        env, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, auth
    )
    assert status == 400 and refreshed["error"] == "invalid_grant"
    assert (await userinfo(env, body["access_token"]))[0] == 401


async def test_parallel_wrong_passwords_are_throttled_together(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """All attempts are counted before any password is checked: parallel requests cannot
    test more passwords than the limit allows."""
    client = await add_client(env)
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    attempts = await asyncio.gather(
        *(browser.login(landing, EMAIL, f"wrong-password-{n}") for n in range(12))
    )
    statuses = sorted(attempt.status for attempt in attempts)
    assert statuses.count(401) == MAX_FAILURES_PER_PAIR, statuses
    assert statuses.count(429) == 12 - MAX_FAILURES_PER_PAIR, statuses


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        (
            "/authorize",
            b"client_id=x",
            "application/x-www-form-urlencoded; charset=no-such-charset",
        ),
        ("/authorize", b"client_id=\xff\xfe", "application/x-www-form-urlencoded"),
        ("/u/login", b"state=\xff&csrf_token=\xfe", "application/x-www-form-urlencoded"),
        ("/u/consent", b"state=x", "application/x-www-form-urlencoded; charset=no-such-charset"),
    ],
)
async def test_hostile_forms_get_a_page_not_a_500(
    env: AuthorizeEnv, path: str, body: bytes, content_type: str
) -> None:
    response = await env.http.post(
        path, data=body, headers={"Host": DOMAIN, "Content-Type": content_type}
    )
    assert response.status in (400, 403), await response.text()
    assert response.content_type == "text/html"


async def test_a_hostile_session_cookie_is_ignored(env: AuthorizeEnv, browser: Browser) -> None:
    client = await add_client(env)
    _, challenge = pkce_pair()
    response = await env.http.get(
        "/authorize",
        params={
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        headers={"Host": DOMAIN, "Cookie": "oidc_session=\udcff\udcfe; ia_x=\u00e9"},
        allow_redirects=False,
    )
    assert response.status == 302 and response.headers["Location"].startswith("/u/login?state=")


async def test_dynamic_clients_authenticate_the_way_they_registered(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)  # client_secret_basic
    code, verifier = await code_flow(env, browser, client)
    status, body = await token(
        env,
        code_form(
            code,
            verifier,
            CALLBACK,
            client_id=client["client_id"],
            client_secret=client["client_secret"],
        ),
    )
    assert status == 401 and body["error"] == "invalid_client", body


async def test_refresh_narrowing_keeps_the_family_scopes(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    auth = (client["client_id"], client["client_secret"])
    code, verifier = await code_flow(env, browser, client, scope="openid email offline_access")
    status, body = await token(
        env,
        code_form(code, verifier, CALLBACK),
        auth,
    )
    status, narrowed = await token(
        env,
        {"grant_type": "refresh_token", "scope": "openid", "refresh_token": body["refresh_token"]},
        auth,
    )
    assert status == 200 and narrowed["scope"] == "openid" and narrowed["refresh_token"], narrowed
    status, wide = await token(
        env, {"grant_type": "refresh_token", "refresh_token": narrowed["refresh_token"]}, auth
    )
    assert status == 200 and wide["scope"] == "openid email offline_access", wide


async def test_a_long_state_still_comes_back_with_an_error(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env)
    state = "s" * 3000
    landing = await browser.authorize(
        client_id=client["client_id"], redirect_uri=CALLBACK, response_type="token", state=state
    )
    assert landing.params["error"] == "unauthorized_client" and landing.params["state"] == state


@pytest.mark.parametrize(
    "raw_state", ["%FF%FE", "caf%C3%A9", "tab%09", "nul%00", "caf%C3%A9&state=plain"]
)
async def test_a_state_that_is_not_vschar_is_refused_on_a_page(
    env: AuthorizeEnv, browser: Browser, raw_state: str
) -> None:
    """Issue 21, point 5: state is 1*VSCHAR (RFC 6749 A.5); invalid UTF-8 once came back
    altered (U+FFFD) in the error redirect."""
    client = await add_client(env)
    _, challenge = pkce_pair()
    base = (
        f"/authorize?client_id={client['client_id']}&redirect_uri={CALLBACK}"
        f"&response_type=code&code_challenge={challenge}&code_challenge_method=S256"
    )
    refused = await browser.go("GET", f"{base}&state={raw_state}")
    assert refused.url is None and refused.status == 400, refused
    assert refused.page is not None and "state parameter must be printable ASCII" in refused.page
    printable = "a b~!*'();:@&=+$,/?#[]\\"
    landing = await browser.go("GET", f"{base}&state={quote(printable, safe='')}&prompt=none")
    assert landing.params["error"] == "login_required" and landing.params["state"] == printable


async def test_a_blocked_address_never_locks_the_owner_out(env: AuthorizeEnv) -> None:
    """Issue 21, point 3: failures block the (account, address) pair, not the account. Before,
    five failures from anywhere locked the account for everyone, the owner included."""
    client = await add_client(env)
    attacker = Browser(env.http, DOMAIN, headers={"X-Forwarded-For": "203.0.113.66"})
    owner = Browser(env.http, DOMAIN, headers={"X-Forwarded-For": "198.51.100.5"})

    async def landing(browser: Browser) -> Any:
        _, challenge = pkce_pair()
        return await browser.authorize(
            client_id=client["client_id"],
            redirect_uri=CALLBACK,
            response_type="code",
            code_challenge=challenge,
            code_challenge_method="S256",
        )

    at_attacker = await landing(attacker)
    for _ in range(MAX_FAILURES_PER_PAIR):
        assert (await attacker.login(at_attacker, EMAIL, "guess")).status == 401
    assert (await attacker.login(at_attacker, EMAIL)).status == 429  # even the right one
    signed_in = await owner.login(await landing(owner), EMAIL)
    assert signed_in.status == 200 and signed_in.page is not None
    assert "Authorize application" in signed_in.page  # past the login, at consent
    allowed = await owner.submit(signed_in, action="allow")
    assert allowed.url is not None and "code" in allowed.params, allowed


async def _set_tenant_name(env: AuthorizeEnv, name: str) -> None:
    tenant_id = env.tenant.tenant_id
    await env.db[Collections.TENANT_SETTINGS].update_one(
        {"_id": tenant_id}, {"$set": {"settings.friendly_name": name}, "$inc": {"version": 1}}
    )
    cache = env.app[TENANT_SETTINGS]
    await cache._redis.delete(cache.key(tenant_id))


@pytest.mark.parametrize(
    ("client_name", "marked"),
    [
        ("\u0410\u0441me Bank", True),  # a Cyrillic A and es
        ("ACME  BANK", True),
        ("Acrne Bank", True),  # rn reads as m
        ("Acme Bank Notes", False),
        ("Notes for Acme Bank users", False),
    ],
)
async def test_a_third_party_name_that_imitates_the_tenants_is_called_out(
    env: AuthorizeEnv, browser: Browser, client_name: str, marked: bool
) -> None:
    """Issue 21, point 4: a name confusable with the tenant's (UTS #39 skeleton) is marked on
    the login and consent pages."""
    await _set_tenant_name(env, "Acme Bank")
    client = await add_client(env, client_name=client_name)
    _, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    warning = "name looks like <strong>Acme Bank</strong>, but it was not published by Acme Bank"
    assert landing.page is not None and (warning in landing.page) is marked
    consent = await browser.login(landing, EMAIL)
    assert consent.page is not None and "Authorize application" in consent.page
    assert (warning in consent.page) is marked
