"""Signing out in a real browser (issue 22): headless Debian Chromium through the nginx
gateway, the services as processes. Two clients registered through `POST /oidc/register`
with back-channel logout URIs on a loopback receiver (allowed by CIMD_PRIVATE_HOSTS); the user
signs in to both, sees them on the connected-apps page, and one logs the user out with
`id_token_hint` and `post_logout_redirect_uri`: both lose the session, and the receiver gets
one valid Logout Token per client. Without a hint, the confirmation page asks first.
Screenshots (desktop and phone) of the connected-apps, logout confirmation and logged-out
pages: .local/artifacts/screenshots/; each page passes axe-core's WCAG A/AA rules with no
serious or critical violation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest
from playwright.async_api import Browser, Page

from tests.support.accessibility import accessibility_violations
from tests.support.backchannel import LogoutReceiver as Receiver
from tests.support.backing import BackingServices
from tests.support.browser import (
    Callback,
    check_page_headers,
    landed_at,
    screenshot,
    sign_in,
)
from tests.support.gateway import Edge, SignInTenant, pkce_pair
from tests.support.signin import code_form
from tests.support.stack import gateway_stack

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture(scope="module")
def logout_stack(
    backing: BackingServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, dict[str, str], str]]:
    """A stack whose authorize service may deliver back-channel logouts to loopback."""
    extra = {"CIMD_PRIVATE_HOSTS": "127.0.0.1"}
    with gateway_stack(backing, tmp_path_factory.mktemp("logout"), extra) as stack:
        yield stack


@pytest.fixture(scope="module")
async def logout_edge(logout_stack: tuple[int, dict[str, str], str]) -> AsyncIterator[Edge]:
    port, creds, _ = logout_stack
    async with aiohttp.ClientSession() as session:
        yield Edge(port, creds, session)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def csp_free_page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh profile that may inject axe-core into the provider's pages."""
    context = await browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _register(
    edge: Edge, name: str, callback: Callback, receiver: Receiver
) -> dict[str, Any]:
    return await edge.register(
        {
            "client_name": name,
            "redirect_uris": [callback.url],
            "post_logout_redirect_uris": [callback.url],
            "backchannel_logout_uri": receiver.url,
            "application_type": "native",
        }
    )


def _authorize_url(
    edge: Edge, client: dict[str, Any], callback: Callback, **extra: str
) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    query = {
        "client_id": client["client_id"],
        "redirect_uri": callback.url,
        "response_type": "code",
        "scope": "openid email",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{edge.origin}/authorize?{urlencode(query)}", verifier


async def _redeem(
    edge: Edge, client: dict[str, Any], callback: Callback, code: str, verifier: str
) -> dict[str, Any]:
    status, body = await edge.token(
        {
            **code_form(code, verifier, callback.url),
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
    )
    assert status == 200, body
    return body


async def _checked_page(page: Page, name: str) -> None:
    """Screenshots at desktop and phone widths, and the accessibility check."""
    await screenshot(page, name, phone=True)
    violations = await accessibility_violations(page)
    assert violations == [], (name, violations)


async def test_logout_ends_the_session_everywhere_and_tells_each_client(
    logout_edge: Edge,
    csp_free_page: Page,
    loopback_callback: Callback,
    receiver: Receiver,
) -> None:
    edge, page = logout_edge, csp_free_page
    tenant: SignInTenant = await edge.sign_in_tenant()
    one = await _register(edge, "Notes", loopback_callback, receiver)
    two = await _register(edge, "Diary", loopback_callback, receiver)

    url, verifier = _authorize_url(edge, one, loopback_callback)
    await sign_in(page, url, tenant.email, tenant.password, "logout-signin")
    tokens = await _redeem(
        edge, one, loopback_callback, (await landed_at(page, loopback_callback))["code"], verifier
    )
    url, verifier = _authorize_url(edge, two, loopback_callback)
    await page.goto(url)  # signed in already: consent only
    await page.get_by_role("button", name="Allow").click()
    await _redeem(
        edge, two, loopback_callback, (await landed_at(page, loopback_callback))["code"], verifier
    )

    # The connected-apps page lists both.
    response = await page.goto(f"{edge.origin}/u/apps")
    assert response is not None and response.status == 200
    check_page_headers(await response.all_headers())
    await page.get_by_role("heading", name="Notes").wait_for()
    await page.get_by_role("heading", name="Diary").wait_for()
    await _checked_page(page, "connected-apps")

    # RP-initiated logout with a hint: straight back to the client, with its state.
    logout = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": loopback_callback.url,
        "state": "bye-1",
    }
    await page.goto(f"{edge.origin}/oidc/logout?{urlencode(logout)}")
    assert (await landed_at(page, loopback_callback))["state"] == "bye-1"
    for client in (one, two):
        silent, _ = _authorize_url(edge, client, loopback_callback, prompt="none")
        await page.goto(silent)
        assert (await landed_at(page, loopback_callback))["error"] == "login_required"

    # One valid Logout Token per client, against the JWKS.
    await receiver.wait_for(2, seconds=15)
    sid = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    jwks = await edge.jwks()
    audiences = set()
    for token in receiver.tokens:
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "logout+jwt"
        claims = jwt.decode(
            token,
            jwks[header["kid"]].key,
            algorithms=["RS256"],
            audience=jwt.decode(token, options={"verify_signature": False})["aud"],
            issuer=edge.issuer,
        )
        assert claims["events"] == {EVENT: {}} and claims["sid"] == sid and "nonce" not in claims
        audiences.add(claims["aud"])
    assert audiences == {one["client_id"], two["client_id"]}
    assert len(receiver.tokens) == 2


async def test_without_a_hint_the_user_confirms_in_the_browser(
    logout_edge: Edge, csp_free_page: Page, loopback_callback: Callback, receiver: Receiver
) -> None:
    edge, page = logout_edge, csp_free_page
    tenant: SignInTenant = await edge.sign_in_tenant()
    client = await _register(edge, "Notes", loopback_callback, receiver)
    url, _ = _authorize_url(edge, client, loopback_callback)
    await sign_in(page, url, tenant.email, tenant.password, "logout-confirm-signin")
    await landed_at(page, loopback_callback)
    response = await page.goto(f"{edge.origin}/oidc/logout")
    assert response is not None and response.status == 200
    await page.get_by_role("heading", name="Sign out?").wait_for()
    await _checked_page(page, "logout-confirmation")
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", name="You are signed out").wait_for()
    await _checked_page(page, "logged-out")
    silent, _ = _authorize_url(edge, client, loopback_callback, prompt="none")
    await page.goto(silent)
    assert (await landed_at(page, loopback_callback))["error"] == "login_required"
