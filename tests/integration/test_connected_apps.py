"""The connected-apps page (issue 22): a signed-in user sees the applications holding access
to their account and takes it back; CSRF-protected; its own sign-in when there is no session.
Real HTTP against an in-process authorize service with real storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.signin import (
    PASSWORD,
    Browser,
    add_api,
    add_client,
    add_user,
    code_form,
    forms,
    pkce_pair,
    sign_in_with_code,
    token_request,
    userinfo_request,
)

DOMAIN = "apps.example"
CALLBACK = "https://app.example.com/callback"
EMAIL = "ada@example.com"
API = "appointments:api"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_user(environment, EMAIL)
        await add_api(environment, API, allow_offline_access=True)
        yield environment


@pytest.fixture
def browser(env: AuthorizeEnv) -> Browser:
    return Browser(env.http, DOMAIN)


async def _sign_in(
    env: AuthorizeEnv, browser: Browser, client: dict[str, Any], **params: str
) -> dict[str, Any]:
    signed_in = await sign_in_with_code(env, browser, client, EMAIL, **params)
    if signed_in.consent_page is not None:  # "manage connected apps" from consent
        assert 'href="/u/apps"' in signed_in.consent_page
    return signed_in.tokens


async def test_the_page_lists_apps_and_takes_access_back(
    env: AuthorizeEnv, browser: Browser
) -> None:
    notes = await add_client(env, client_name="Notes <b>app</b>")
    diary = await add_client(env, client_name="Diary")
    tokens = await _sign_in(
        env, browser, notes, scope="openid offline_access appointments", audience=API
    )
    await _sign_in(env, browser, diary, scope="openid email")
    page = await browser.go("GET", "/u/apps")
    assert page.status == 200 and page.page is not None
    html = page.page
    assert "Notes &lt;b&gt;app&lt;/b&gt;" in html and "Diary" in html  # escaped
    assert "unverified application" in html and "Appointments" in html
    assert "appointments" in html and "email" in html and "last used" in html
    revoke_forms = [f for f in forms(html) if f["action"] == "/u/apps/revoke"]
    [notes_form] = [f for f in revoke_forms if f["fields"]["client_id"] == notes["client_id"]]
    # A forged CSRF token takes nothing back.
    forged = await browser.go(
        "POST", "/u/apps/revoke", data={**notes_form["fields"], "csrf_token": "x" * 32}
    )
    assert forged.status == 403
    assert (await userinfo_request(env.http, DOMAIN, tokens["access_token"]))[0] == 200
    done = await browser.go("POST", "/u/apps/revoke", data=notes_form["fields"])
    assert done.status == 200 and done.page is not None and "Access removed" in done.page
    assert "Notes &lt;b&gt;" not in done.page and "Diary" in done.page
    # Its refresh token is dead at once, its access token where checked.
    assert (await userinfo_request(env.http, DOMAIN, tokens["access_token"]))[0] == 401
    status, _ = await token_request(
        env.http,
        DOMAIN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        (notes["client_id"], notes["client_secret"]),
    )
    assert status == 400


async def test_without_a_session_the_page_signs_in_first(
    env: AuthorizeEnv, browser: Browser
) -> None:
    client = await add_client(env, client_name="Notes")
    await _sign_in(env, browser, client, scope="openid")
    env.http.session.cookie_jar.clear()
    page = await browser.go("GET", "/u/apps")
    assert page.page is not None and "Sign in to see which applications" in page.page
    [form] = [f for f in forms(page.page) if f["action"] == "/u/apps/login"]
    wrong = await browser.go(
        "POST", "/u/apps/login", data={**form["fields"], "email": EMAIL, "password": "nope"}
    )
    assert wrong.status == 401
    stale = await browser.go(
        "POST",
        "/u/apps/login",
        data={**form["fields"], "csrf_token": "y" * 32, "email": EMAIL, "password": PASSWORD},
    )
    assert stale.status == 403
    signed_in = await browser.go(
        "POST", "/u/apps/login", data={**form["fields"], "email": EMAIL, "password": PASSWORD}
    )
    assert signed_in.status == 200 and signed_in.page is not None
    assert "Connected apps" in signed_in.page and "Notes" in signed_in.page


async def test_a_sign_in_form_from_another_browser_signs_no_one_in(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A second review: the form's id and CSRF token, fetched by an attacker and posted from
    another site, signed the victim's browser in as the attacker (login CSRF)."""
    env.http.session.cookie_jar.clear()
    page = await browser.go("GET", "/u/apps")
    assert page.page is not None
    [form] = [f for f in forms(page.page) if f["action"] == "/u/apps/login"]
    env.http.session.cookie_jar.clear()  # the victim's browser: no binding cookie
    planted = await browser.go(
        "POST", "/u/apps/login", data={**form["fields"], "email": EMAIL, "password": PASSWORD}
    )
    assert planted.status == 403
    assert "oidc_session" not in {c.key for c in env.http.session.cookie_jar}


async def test_a_code_issued_before_access_was_taken_back_is_not_redeemed(
    env: AuthorizeEnv, browser: Browser
) -> None:
    """A third review: a code the app obtained (prompt=none) before the user removed it still
    redeemed afterwards, for tokens no page or API listed any more."""
    client = await add_client(env, client_name="Notes")
    await _sign_in(env, browser, client, scope="openid")
    verifier, challenge = pkce_pair()
    silent = await browser.authorize(
        client_id=client["client_id"],
        redirect_uri=CALLBACK,
        response_type="code",
        scope="openid",
        prompt="none",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    code = silent.params["code"]
    page = await browser.go("GET", "/u/apps")
    assert page.page is not None
    [form] = [f for f in forms(page.page) if f["action"] == "/u/apps/revoke"]
    assert (await browser.go("POST", "/u/apps/revoke", data=form["fields"])).status == 200
    status, body = await token_request(
        env.http,
        DOMAIN,
        code_form(code, verifier, CALLBACK),
        (client["client_id"], client["client_secret"]),
    )
    assert (status, body["error"]) == (400, "invalid_grant"), body
