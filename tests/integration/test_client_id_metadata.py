"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02) against an
in-process authorize service (MongoDB and Redis real) and documents the test serves over https
on 127.0.0.1, signed by a test CA the provider trusts through CIMD_CA_FILE.

The test host names resolve through the fetcher's `resolve` (a DNS answer the test controls);
the address guard is relaxed for `client.test` and `other.test` only (CIMD_PRIVATE_HOSTS),
except in the tests that show neither relaxation applies by default.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
from aiohttp import web

from authorize_service.client_id_metadata.fetcher import FetchLimits
from authorize_service.resources import CLIENT_ID_METADATA, TENANT_SETTINGS
from oidc_common.config import Settings
from oidc_common.mongo import Collections
from oidc_common.service import REDIS
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.cimd import (
    DocumentPki,
    DocumentServer,
    document_server,
    make_pki,
    static_resolver,
)
from tests.support.services import with_overrides
from tests.support.signin import (
    Browser,
    Landing,
    add_user,
    code_form,
    jwks_key,
    pkce_pair,
    token_request,
)

DOMAIN = "cimd.example"
ISSUER = f"http://{DOMAIN}/"
EMAIL = "ada@example.com"
CALLBACK = "http://127.0.0.1/callback"  # a native app's loopback redirect, any port
DOC = "/oauth/client.json"
TITLE = "Application information unavailable"
# What the test's DNS answers. client.test and other.test are where the document server is.
RESOLVE = {
    "client.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "loopback.test": ["127.0.0.1"],
    "ten.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "v6-loopback.test": ["::1"],
    "mixed.test": ["93.184.215.14", "10.1.2.3"],
}
RELAXED = ("client.test", "other.test")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DocumentPki:
    return make_pki(tmp_path_factory.mktemp("cimd-pki"))


@pytest.fixture
async def docs(pki: DocumentPki) -> AsyncIterator[DocumentServer]:
    async with document_server(pki) as server:
        yield server


async def start(settings: Settings, domain: str = DOMAIN) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings, domain, AuthorizeEnv) as environment:
        environment.app[CLIENT_ID_METADATA].fetcher.resolve = static_resolver(RESOLVE)
        await add_user(environment, EMAIL)
        yield environment


@pytest.fixture
async def env(settings_for: SettingsFactory, pki: DocumentPki) -> AsyncIterator[AuthorizeEnv]:
    """The test CA trusted, the guard relaxed for client.test and other.test only."""
    settings = with_overrides(
        settings_for("authorize"), cimd_ca_file=str(pki.ca_file), cimd_private_hosts=RELAXED
    )
    async for environment in start(settings):
        yield environment


@pytest.fixture
def browser(env: AuthorizeEnv) -> Browser:
    return Browser(env.http, DOMAIN)


async def set_policy(
    env: AuthorizeEnv,
    *,
    enabled: bool = True,
    allowed_hosts: tuple[str, ...] = (),
    min_seconds: int = 60,
    max_seconds: int = 3600,
) -> None:
    """The tenant's Client ID Metadata Document policy, as a settings PATCH would store it."""
    policy = {
        "enabled": enabled,
        "allowed_hosts": list(allowed_hosts),
        "cache_ttl": {"min_seconds": min_seconds, "max_seconds": max_seconds},
    }
    await env.db[Collections.TENANT_SETTINGS].update_one(
        {"_id": env.tenant.tenant_id},
        {
            "$set": {"settings.dynamic_client_registration.client_id_metadata_documents": policy},
            "$inc": {"version": 1},
        },
    )
    await env.app[REDIS].delete(env.app[TENANT_SETTINGS].key(env.tenant.tenant_id))


def document(url: str, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": url,
        "client_name": "Agent Smith",
        "client_uri": "https://client.test/",
        "redirect_uris": [CALLBACK],
        "application_type": "native",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid email offline_access",
        "software_id": "agent-smith",
    }
    body.update(members)
    return body


async def authorize(browser: Browser, client_id: str, **extra: str) -> tuple[Landing, str]:
    verifier, challenge = pkce_pair()
    landing = await browser.authorize(
        client_id=client_id,
        redirect_uri=extra.pop("redirect_uri", "http://127.0.0.1:49152/callback"),
        response_type="code",
        scope="openid email offline_access",
        state="s1",
        nonce="n1",
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )
    return landing, verifier


async def token(env: AuthorizeEnv, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    return await token_request(env.http, DOMAIN, data)


def assert_refused(landing: Landing, *reason: str) -> None:
    """An error page (never a redirect, never a 500) saying why."""
    assert landing.url is None and landing.page is not None, landing
    assert landing.status == 400, (landing.status, landing.page)
    assert TITLE in landing.page, landing.page
    for words in reason:
        assert words in landing.page, (words, landing.page)


async def refused_at_authorize(
    browser: Browser, docs: DocumentServer, url: str, *reason: str
) -> None:
    landing, _ = await authorize(browser, url)
    assert_refused(landing, *reason)


# ----------------------------------------------------------------------------- happy path


async def test_sign_in_with_a_metadata_document_client(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    """Code + PKCE through login and consent, the token exchange and a refresh as a public
    client named by its URL; the document fetched once for all of it, no client stored."""
    await set_policy(env, allowed_hosts=("client.test",))
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url), {"Cache-Control": "max-age=300"})
    landing, verifier = await authorize(browser, url)
    assert landing.page is not None and "Sign in" in landing.page, landing
    landing = await browser.login(landing, EMAIL)
    assert landing.page is not None and "Authorize application" in landing.page, landing
    assert "Client information published by <strong>client.test</strong>" in landing.page
    assert "Agent Smith" in landing.page and "agent-smith" in landing.page
    landing = await browser.submit(landing, action="allow")
    assert landing.url is not None and landing.url.startswith("http://127.0.0.1:49152/callback?"), (
        landing
    )
    assert landing.params["state"] == "s1" and landing.params["iss"] == ISSUER

    status, body = await token(
        env,
        code_form(
            landing.params["code"], verifier, "http://127.0.0.1:49152/callback", client_id=url
        ),
    )
    assert status == 200, body
    claims = jwt.decode(
        body["id_token"],
        await jwks_key(env.http, DOMAIN, body["id_token"]),
        algorithms=["RS256"],
        audience=url,
        issuer=ISSUER,
    )
    assert claims["nonce"] == "n1" and claims["email"] == EMAIL
    status, refreshed = await token(
        env,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": url},
    )
    assert status == 200 and refreshed["access_token"], refreshed

    assert docs.hits[DOC] == 1  # /authorize, both pages, both token requests: one fetch
    assert await env.db[Collections.CLIENTS].count_documents({"_id": url}) == 0


async def test_token_endpoint_refuses_a_secret_for_a_document_client(
    env: AuthorizeEnv, docs: DocumentServer
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url))
    status, body = await token(
        env,
        {
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": url,
            "client_secret": "s",
        },
    )
    assert status == 401 and body["error"] == "invalid_client"
    assert "must not present a secret" in body["error_description"]


async def test_discovery_advertises_documents_only_while_the_tenant_allows_them(
    env: AuthorizeEnv,
) -> None:
    async def metadata() -> dict[str, Any]:
        response = await env.http.get("/.well-known/openid-configuration", headers={"Host": DOMAIN})
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body

    assert "client_id_metadata_document_supported" not in await metadata()  # off by default
    await set_policy(env)
    assert (await metadata())["client_id_metadata_document_supported"] is True
    await set_policy(env, enabled=False)
    assert "client_id_metadata_document_supported" not in await metadata()


# --------------------------------------------------------------------------- the policy


async def test_off_by_default_an_https_client_id_is_an_unknown_client(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url))
    landing, _ = await authorize(browser, url)
    assert landing.status == 400 and landing.page is not None and landing.url is None
    assert "Unknown application" in landing.page
    status, body = await token(
        env, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": url}
    )
    assert status == 401 and body == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }
    assert docs.hits[DOC] == 0


async def test_host_outside_the_allow_list_is_not_fetched(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env, allowed_hosts=("client.test",))
    url = docs.url(DOC, host="other.test")
    docs.serve_json(DOC, document(url))
    await refused_at_authorize(browser, docs, url, "published by other.test are not accepted")
    status, body = await token(
        env, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": url}
    )
    assert status == 401 and body["error"] == "invalid_client"
    assert "not accepted here" in body["error_description"]
    assert docs.hits[DOC] == 0


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        ("https://client.test/a/../client.json", ". or .. segments"),
        ("https://client.test/client.json#x", "fragment"),
        ("https://user@client.test/client.json", "userinfo"),
        ("https://client.test", "path"),
    ],
)
async def test_invalid_client_identifier_urls_are_not_fetched(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer, client_id: str, reason: str
) -> None:
    await set_policy(env)
    await refused_at_authorize(
        browser, docs, client_id, "not a valid Client Identifier URL", reason
    )
    assert sum(docs.hits.values()) == 0


# ------------------------------------------------------------------------ the document


async def test_client_id_differing_from_the_url_is_refused(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(docs.url(DOC, host="other.test")))
    await refused_at_authorize(browser, docs, url, "client_id must be exactly the URL")


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_document_is_refused(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer, chunked: bool
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    body = document(url, client_name="A" * 150, contacts=[f"a{i}@example.com" for i in range(300)])

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.json_response(body)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(20):  # 20 x 1 KiB, no Content-Length
            await response.write(b" " * 1024)
        await response.write_eof()
        return response

    docs.routes[DOC] = handler
    await refused_at_authorize(browser, docs, url, "larger than 5120 bytes")


async def test_slow_host_times_out_and_is_not_asked_again_at_once(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)
    env.app[CLIENT_ID_METADATA].fetcher.limits = FetchLimits(timeout_seconds=1.0)

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response({})

    docs.routes[DOC] = slow
    docs.routes["/other.json"] = slow
    started = time.monotonic()
    await refused_at_authorize(browser, docs, docs.url(DOC), "did not answer within 1 seconds")
    assert time.monotonic() - started < 3
    # Remembered briefly, for the whole host: neither this URL nor another one on the same
    # host waits on it again.
    started = time.monotonic()
    await refused_at_authorize(browser, docs, docs.url(DOC), "did not answer")
    await refused_at_authorize(browser, docs, docs.url("/other.json"), "did not answer")
    assert time.monotonic() - started < 0.5
    assert docs.hits[DOC] == 1 and docs.hits["/other.json"] == 0


async def test_a_dead_port_does_not_block_the_hosts_other_origins(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    """A failure of the server itself is remembered per origin (host and port) and tenant:
    one request naming a closed port must not refuse the documents of a working one."""
    await set_policy(env)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    good = docs.url(DOC)
    docs.serve_json(DOC, document(good))
    dead = good.replace(f":{urlsplit(good).port}/", f":{closed_port}/")
    await refused_at_authorize(browser, docs, dead, "connect")
    started, _ = await authorize(browser, good)
    assert started.page is not None and "Sign in" in started.page, started
    assert docs.hits[DOC] == 1


async def test_redirect_is_not_followed(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    elsewhere = docs.url("/elsewhere.json", host="other.test")
    docs.serve_json("/elsewhere.json", document(url))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(elsewhere)

    docs.routes[DOC] = redirect
    await refused_at_authorize(browser, docs, url, "answered with a redirect (HTTP 302)")
    assert docs.hits[DOC] == 1 and docs.hits["/elsewhere.json"] == 0


async def test_invalid_json_is_refused(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)

    async def broken(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"client_id": ', content_type="application/json")

    docs.routes[DOC] = broken
    await refused_at_authorize(browser, docs, docs.url(DOC), "not valid JSON")


@pytest.mark.parametrize(
    ("status", "content_type", "reason"),
    [
        (404, "application/json", "answered HTTP 404"),
        (200, "text/html", "served as text/html"),
    ],
)
async def test_other_answers_are_refused(
    env: AuthorizeEnv,
    browser: Browser,
    docs: DocumentServer,
    status: int,
    content_type: str,
    reason: str,
) -> None:
    await set_policy(env)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="{}", content_type=content_type)

    docs.routes[DOC] = answer
    await refused_at_authorize(browser, docs, docs.url(DOC), reason)


@pytest.mark.parametrize(
    ("redirect_uris", "reason"),
    [
        (["http://attacker.example/callback"], "http is only allowed on a loopback host"),
        (["javascript:alert(1)//"], "redirect_uris[0]"),
        (["https://client.test/cb#fragment"], "fragment"),
    ],
)
async def test_unsafe_redirect_uris_are_refused(
    env: AuthorizeEnv,
    browser: Browser,
    docs: DocumentServer,
    redirect_uris: list[str],
    reason: str,
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url, redirect_uris=redirect_uris, application_type="web"))
    await refused_at_authorize(browser, docs, url, reason)


async def test_redirect_uri_not_in_the_document_is_refused(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url))
    landing, _ = await authorize(browser, url, redirect_uri="https://attacker.example/cb")
    assert (
        landing.url is None and landing.page is not None and "Invalid redirect URI" in landing.page
    )


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"token_endpoint_auth_method": "client_secret_basic"}, "needs a shared secret"),
        ({"client_secret": "hunter2"}, "must not contain client_secret"),
        (
            {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.test/j"},
            "private_key_jwt is not supported yet",
        ),
    ],
)
async def test_documents_with_secrets_or_keys_are_refused(
    env: AuthorizeEnv,
    browser: Browser,
    docs: DocumentServer,
    members: dict[str, Any],
    reason: str,
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url, **members))
    await refused_at_authorize(browser, docs, url, reason)
    status, body = await token(
        env, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": url}
    )
    assert status == 401 and body["error"] == "invalid_client"
    assert reason in body["error_description"]


# ---------------------------------------------------------------------------- caching


async def cache_ttl(env: AuthorizeEnv, url: str) -> int:
    cache = env.app[CLIENT_ID_METADATA].cache
    keys = [key async for key in env.app[REDIS].scan_iter(match=cache.key("doc", "*"))]
    assert len(keys) <= 1
    return int(await env.app[REDIS].ttl(keys[0])) if keys else -2


@pytest.mark.parametrize(
    ("headers", "bounds", "fetches", "ttl"),
    [
        ({"Cache-Control": "max-age=600"}, (60, 3600), 1, (590, 600)),
        ({"Cache-Control": "max-age=86400"}, (60, 3600), 1, (3590, 3600)),  # at most max
        ({"Cache-Control": "no-store"}, (60, 3600), 1, (50, 60)),  # at least min
        ({}, (120, 3600), 1, (110, 120)),  # no caching headers: the minimum
        # min 0: no-store honoured, each /authorize and its login page fetch again
        ({"Cache-Control": "no-store"}, (0, 3600), 4, None),
    ],
)
async def test_documents_are_cached_within_the_tenant_bounds(
    env: AuthorizeEnv,
    browser: Browser,
    docs: DocumentServer,
    headers: dict[str, str],
    bounds: tuple[int, int],
    fetches: int,
    ttl: tuple[int, int] | None,
) -> None:
    await set_policy(env, min_seconds=bounds[0], max_seconds=bounds[1])
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url), headers)
    for _ in range(2):
        landing, _ = await authorize(browser, url)
        assert landing.page is not None and "Sign in" in landing.page, landing
    assert docs.hits[DOC] == fetches
    remaining = await cache_ttl(env, url)
    if ttl is None:
        assert remaining == -2  # not stored
    else:
        assert ttl[0] <= remaining <= ttl[1]


async def test_failures_are_remembered_briefly_not_as_documents(
    env: AuthorizeEnv, browser: Browser, docs: DocumentServer
) -> None:
    await set_policy(env)
    url = docs.url(DOC)
    docs.serve_json(DOC, document(url, client_id="https://wrong.test/x"))
    await refused_at_authorize(browser, docs, url, "client_id must be exactly")
    docs.serve_json(DOC, document(url))  # fixed meanwhile
    await refused_at_authorize(browser, docs, url, "client_id must be exactly")
    assert docs.hits[DOC] == 1
    assert await cache_ttl(env, url) == -2  # the invalid document was never cached
    failure = env.app[CLIENT_ID_METADATA].cache.key("fail", "*")
    [key] = [key async for key in env.app[REDIS].scan_iter(match=failure)]
    assert 0 < int(await env.app[REDIS].ttl(key)) <= 30


# ------------------------------------------------------------- the guard, not relaxed


class ConnectorSpy(aiohttp.TCPConnector):
    built: list[ConnectorSpy] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ConnectorSpy.built.append(self)
        super().__init__(*args, **kwargs)


@pytest.mark.parametrize(
    "host",
    [
        "loopback.test",
        "ten.test",
        "metadata.test",
        "v6-loopback.test",
        "mixed.test",
        "127.0.0.1",
        "[::1]",
    ],
)
async def test_special_use_addresses_are_refused_without_a_connection(
    env: AuthorizeEnv,
    browser: Browser,
    docs: DocumentServer,
    host: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """127.0.0.1, 10.x, 169.254.x, [::1], one private address among public ones, and IP
    literals: refused, and no connector is even built. loopback.test resolves to the document
    server itself, which sees no request. The relaxation for client.test does not carry over."""
    ConnectorSpy.built.clear()
    monkeypatch.setattr(aiohttp, "TCPConnector", ConnectorSpy)  # what the fetcher builds
    await set_policy(env)
    url = docs.url(DOC, host=host)
    docs.serve_json(DOC, document(url))
    await refused_at_authorize(browser, docs, url, "only fetched from public addresses")
    status, body = await token(
        env, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": url}
    )
    assert status == 401 and "public addresses" in body["error_description"]
    assert ConnectorSpy.built == [] and docs.hits[DOC] == 0


async def test_neither_ca_nor_private_address_is_trusted_by_default(
    settings_for: SettingsFactory, docs: DocumentServer
) -> None:
    """Without CIMD_PRIVATE_HOSTS, client.test (on 127.0.0.1) is refused before any
    connection; with it but without CIMD_CA_FILE, the test CA is not trusted."""
    base = settings_for("authorize")
    cases = [
        (base, "only fetched from public addresses"),
        # Its own Redis prefix: the first case's failure is remembered for client.test.
        (
            with_overrides(
                base, cimd_private_hosts=RELAXED, redis_prefix=f"{base.redis_prefix}ca:"
            ),
            "could not be verified",
        ),
    ]
    for index, (settings, reason) in enumerate(cases):
        domain = f"default{index}.example"
        async for environment in start(settings, domain):
            await set_policy(environment)
            url = docs.url(DOC)
            docs.serve_json(DOC, document(url))
            landing, _ = await authorize(Browser(environment.http, domain), url)
            assert_refused(landing, reason)
    assert docs.hits[DOC] == 0  # the TLS handshake failed before any request
