"""`POST /oauth/token` over real HTTP against real MongoDB and Redis: the client credentials
grant, client authentication (RFC 6749 §2.3.1) and every error answer (RFC 6749 §5.2)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_plus

import jwt
import pytest
from aiohttp import ClientResponse, web

from authorize_service.tokens import endpoint as token_endpoint
from oidc_common.credentials import hash_secret
from oidc_common.management_api import MANAGEMENT_API, MANAGEMENT_SCOPES
from oidc_common.mongo import Collections
from oidc_common.service import REDIS
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.tenants import bootstrap_tenant

DOMAIN = "acme.example"
HOST = {"Host": DOMAIN}
ISSUER = f"http://{DOMAIN}/"
MANAGEMENT_AUDIENCE = f"{ISSUER}api/v2/"
ORDERS_API = "https://orders.example.com/api"
FORM = "application/x-www-form-urlencoded"


class Env(AuthorizeEnv):
    def credentials(self, **extra: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.tenant.client_id,
            "client_secret": self.tenant.client_secret,
            "audience": MANAGEMENT_AUDIENCE,
            **extra,
        }


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[Env]:
    async with authorize_env(settings_for("authorize"), DOMAIN, Env) as environment:
        yield environment


def basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: each half form-urlencoded, then joined and base64-encoded.
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def post_token(
    env: Env,
    data: dict[str, str] | str | bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    content_type: str | None = FORM,
) -> ClientResponse:
    all_headers = {**HOST, **(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return await env.http.post("/oauth/token", data=data, headers=all_headers)


async def post_json(env: Env, body: Any, headers: dict[str, str] | None = None) -> ClientResponse:
    return await post_token(env, json.dumps(body), headers=headers, content_type="application/json")


async def expect_error(
    response: ClientResponse, status: int, error: str, *, challenge: bool = False
) -> dict[str, Any]:
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error, body
    assert body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    if challenge:
        assert response.headers["WWW-Authenticate"] == f'Basic realm="{ISSUER}"'
    else:
        assert "WWW-Authenticate" not in response.headers
    return dict(body)


async def public_key(env: Env, kid: str) -> Any:
    jwks = await (await env.http.get("/.well-known/jwks.json", headers=HOST)).json()
    [jwk] = [key for key in jwks["keys"] if key["kid"] == kid]
    return jwt.PyJWK(jwk).key


async def verified_claims(env: Env, token: str, audience: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": env.tenant.kid}
    claims: dict[str, Any] = jwt.decode(
        token,
        await public_key(env, header["kid"]),
        algorithms=["RS256"],
        audience=audience,
        issuer=ISSUER,
    )
    return claims


async def expect_token(
    env: Env, response: ClientResponse, audience: str, scopes: list[str]
) -> dict[str, Any]:
    body = await response.json()
    assert response.status == 200, body
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.settings.access_token_ttl
    assert body["scope"] == " ".join(scopes)
    claims = await verified_claims(env, body["access_token"], audience)
    now = int(time.time())
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "azp",
        "client_id",
        "scope",
        "iat",
        "exp",
        "jti",
        "gty",
    }
    assert claims["iss"] == ISSUER
    assert claims["sub"] == f"{env.tenant.client_id}@clients"
    assert claims["aud"] == audience
    assert claims["azp"] == claims["client_id"] == env.tenant.client_id
    assert claims["scope"] == " ".join(scopes)
    assert abs(claims["iat"] - now) <= 5
    assert claims["exp"] == claims["iat"] + env.settings.access_token_ttl
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["gty"] == "client-credentials"
    return claims


async def add_client(env: Env, tenant_id: str | None = None, **fields: Any) -> str:
    client_id = fields.pop("_id", None) or f"client-{time.monotonic_ns()}"
    await env.db[Collections.CLIENTS].insert_one(
        {
            "_id": client_id,
            "tenant_id": tenant_id or env.tenant.tenant_id,
            "client_name": "test client",
            "is_first_party": True,
            "dynamic": False,
            "redirect_uris": [],
            **fields,
        }
    )
    return client_id


async def add_api(env: Env, identifier: str, scopes: list[str]) -> None:
    await env.db[Collections.RESOURCE_SERVERS].insert_one(
        {"tenant_id": env.tenant.tenant_id, "identifier": identifier, "scopes": scopes}
    )


async def add_grant(env: Env, client_id: str, identifier: str, scopes: list[str]) -> None:
    await env.db[Collections.CLIENT_GRANTS].insert_one(
        {
            "tenant_id": env.tenant.tenant_id,
            "client_id": client_id,
            "audience": identifier,
            "scope": scopes,
        }
    )


# --- success -------------------------------------------------------------------------------


async def test_client_secret_post_gets_a_signed_access_token(env: Env) -> None:
    response = await post_token(env, env.credentials())
    first = await expect_token(env, response, MANAGEMENT_AUDIENCE, list(MANAGEMENT_SCOPES))
    again = await expect_token(
        env, await post_token(env, env.credentials()), MANAGEMENT_AUDIENCE, list(MANAGEMENT_SCOPES)
    )
    assert first["jti"] != again["jti"]


async def test_client_secret_basic_gets_a_signed_access_token(env: Env) -> None:
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE}
    auth = {"Authorization": basic(env.tenant.client_id, env.tenant.client_secret)}
    response = await post_token(env, data, headers=auth)
    await expect_token(env, response, MANAGEMENT_AUDIENCE, list(MANAGEMENT_SCOPES))
    # client_id may be repeated in the body when it names the same client.
    response = await post_token(env, {**data, "client_id": env.tenant.client_id}, headers=auth)
    await expect_token(env, response, MANAGEMENT_AUDIENCE, list(MANAGEMENT_SCOPES))


async def test_basic_credentials_are_form_urlencoded_before_base64(env: Env) -> None:
    # RFC 6749 §2.3.1: an id and secret with reserved characters must be decoded, not taken raw.
    client_id, secret = "svc:reports 1", "p+ss w:rd/%&="
    await add_client(
        env,
        _id=client_id,
        token_endpoint_auth_method="client_secret_basic",
        client_secret_hash=hash_secret(secret),
        grant_types=["client_credentials"],
    )
    await add_api(env, ORDERS_API, ["read:orders"])
    await add_grant(env, client_id, ORDERS_API, ["read:orders"])
    data = {"grant_type": "client_credentials", "audience": ORDERS_API}
    response = await post_token(env, data, headers={"Authorization": basic(client_id, secret)})
    assert response.status == 200, await response.text()
    token = (await response.json())["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == f"{client_id}@clients"


async def test_json_body_is_accepted(env: Env) -> None:
    response = await post_json(env, env.credentials(scope="read:clients"))
    await expect_token(env, response, MANAGEMENT_AUDIENCE, ["read:clients"])


async def test_scope_narrows_the_granted_scopes(env: Env) -> None:
    response = await post_token(env, env.credentials(scope="update:clients read:clients"))
    await expect_token(env, response, MANAGEMENT_AUDIENCE, ["update:clients", "read:clients"])


async def test_token_for_another_api_carries_its_audience(env: Env) -> None:
    await add_api(env, ORDERS_API, ["read:orders", "write:orders"])
    await add_grant(env, env.tenant.client_id, ORDERS_API, ["read:orders"])
    response = await post_token(env, env.credentials(audience=ORDERS_API))
    await expect_token(env, response, ORDERS_API, ["read:orders"])


async def test_success_updates_last_used_at_and_failure_does_not(env: Env) -> None:
    clients = env.db[Collections.CLIENTS]
    query = {"_id": env.tenant.client_id}
    before = await clients.find_one(query)
    assert before is not None and "last_used_at" not in before

    failed = await post_token(env, env.credentials(client_secret="wrong"))
    await expect_error(failed, 401, "invalid_client")
    # Authenticated, but the grant fails: not a use either (else a client id alone, for a
    # public client, could keep a client from ever being reaped as never used).
    refused = await post_token(env, env.credentials(audience="https://not-granted.example/"))
    await expect_error(refused, 403, "access_denied")
    refused = await post_token(env, env.credentials(grant_type="authorization_code", code="x"))
    assert refused.status in (400, 401)
    unchanged = await clients.find_one(query)
    assert unchanged is not None and "last_used_at" not in unchanged

    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert (await post_token(env, env.credentials())).status == 200
    after = await clients.find_one(query)
    assert after is not None
    assert started <= after["last_used_at"] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


async def test_no_token_reaches_a_client_reaped_during_the_request(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reaper lands after authentication read the client, while the grant runs: the
    tokens already minted are not handed out."""
    clients = env.db[Collections.CLIENTS]
    grant = token_endpoint.GRANTS["client_credentials"]

    async def reaped_meanwhile(request: web.Request, client: Any, params: Any) -> dict[str, Any]:
        body = await grant(request, client, params)
        await clients.update_one(
            {"_id": client.client_id}, {"$set": {"reaped_at": dt.datetime.now(dt.UTC)}}
        )
        return body

    monkeypatch.setitem(token_endpoint.GRANTS, "client_credentials", reaped_meanwhile)  # type: ignore[arg-type]
    answer = await expect_error(await post_token(env, env.credentials()), 401, "invalid_client")
    assert "register it again" in answer["error_description"]
    # Basic authentication gets its challenge with the same answer.
    await clients.update_one({"_id": env.tenant.client_id}, {"$set": {"reaped_at": None}})
    response = await post_token(
        env,
        {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE},
        headers={"Authorization": basic(env.tenant.client_id, env.tenant.client_secret)},
    )
    await expect_error(response, 401, "invalid_client", challenge=True)


# --- malformed requests: invalid_request -------------------------------------------------------


async def test_missing_grant_type(env: Env) -> None:
    data = env.credentials()
    del data["grant_type"]
    await expect_error(await post_token(env, data), 400, "invalid_request")
    # RFC 6749 §3.1: a parameter without a value counts as omitted.
    await expect_error(await post_token(env, {**data, "grant_type": ""}), 400, "invalid_request")


async def test_unsupported_grant_type(env: Env) -> None:
    for grant_type in ("password", "urn:ietf:params:oauth:grant-type:device_code", "implicit"):
        response = await post_token(env, env.credentials(grant_type=grant_type))
        await expect_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", "--x--"),
        (None, b"grant_type=client_credentials"),
        ("application/json", "{not json"),
        ("application/json", ""),
        ("application/json", '["grant_type", "client_credentials"]'),
        ("application/json", '{"grant_type": ["client_credentials"]}'),
        ("application/json", '{"grant_type": {"a": 1}}'),
        ("application/json", '{"grant_type": 1}'),
        ("application/json", "[" * 50_000),
        ("application/json", b'{"grant_type": "\xff"}'),
        ("application/json", '{"grant_type": "client_credentials", "audience": "\\ud800"}'),
        (FORM, b"grant_type=client_credentials&client_id=\xff\xfe"),
        (FORM, "grant_type=client_credentials&client_id=%ff%fe"),
        (FORM, "&".join(f"p{i}=1" for i in range(500))),
    ],
)
async def test_unreadable_body(env: Env, content_type: str | None, body: str | bytes) -> None:
    response = await post_token(env, body, content_type=content_type)
    await expect_error(response, 400, "invalid_request")


async def test_a_compressed_body_is_refused(env: Env) -> None:
    # No endpoint takes a compressed body (oidc_common.request_bodies): 415, connection closed.
    headers = {"Content-Encoding": "gzip", "Connection": "close"}
    response = await post_token(env, b"not gzip at all", headers=headers)
    await expect_error(response, 415, "invalid_request")
    assert response.headers["Connection"] == "close"


async def test_lone_surrogates_in_json_are_refused(env: Env) -> None:
    # JSON escapes can spell a lone surrogate, which no UTF-8 text (nor MongoDB) can hold.
    for name in ("client_secret", "audience", "scope"):
        body = json.dumps({**env.credentials(), name: "@"}).replace('"@"', '"\\udc80"')
        response = await post_token(env, body, content_type="application/json")
        await expect_error(response, 400, "invalid_request")


async def test_repeated_parameter(env: Env) -> None:
    params = env.credentials(scope="read:clients")
    form = "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())
    for repeated in ("grant_type=client_credentials", "scope=read:clients", "client_id=x"):
        response = await post_token(env, f"{form}&{repeated}")
        await expect_error(response, 400, "invalid_request")
    # A JSON object with a duplicated member is the same thing.
    duplicated = json.dumps(env.credentials())[:-1] + ', "grant_type": "client_credentials"}'
    response = await post_token(env, duplicated, content_type="application/json")
    await expect_error(response, 400, "invalid_request")


async def test_both_authentication_methods(env: Env) -> None:
    auth = {"Authorization": basic(env.tenant.client_id, env.tenant.client_secret)}
    response = await post_token(env, env.credentials(), headers=auth)
    await expect_error(response, 400, "invalid_request")


async def test_basic_and_a_different_body_client_id(env: Env) -> None:
    auth = {"Authorization": basic(env.tenant.client_id, env.tenant.client_secret)}
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE, "client_id": "x"}
    await expect_error(await post_token(env, data, headers=auth), 400, "invalid_request")


async def test_missing_audience(env: Env) -> None:
    data = env.credentials()
    del data["audience"]
    await expect_error(await post_token(env, data), 400, "invalid_request")


async def test_wrong_method_is_an_oauth_error(env: Env) -> None:
    response = await env.http.get("/oauth/token", headers=HOST)
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"


# --- client authentication: invalid_client -----------------------------------------------------


async def test_unknown_client(env: Env) -> None:
    response = await post_token(env, env.credentials(client_id="no-such-client"))
    await expect_error(response, 401, "invalid_client")
    auth = {"Authorization": basic("no-such-client", env.tenant.client_secret)}
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE}
    await expect_error(
        await post_token(env, data, headers=auth), 401, "invalid_client", challenge=True
    )


async def test_missing_credentials(env: Env) -> None:
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE}
    await expect_error(await post_token(env, data), 401, "invalid_client")
    only_secret = {**data, "client_secret": env.tenant.client_secret}
    await expect_error(await post_token(env, only_secret), 401, "invalid_client")
    # A confidential client naming itself without its secret has not authenticated.
    only_id = {**data, "client_id": env.tenant.client_id}
    await expect_error(await post_token(env, only_id), 401, "invalid_client")


async def test_wrong_secret_with_client_secret_post(env: Env) -> None:
    response = await post_token(env, env.credentials(client_secret="not-the-secret"))
    await expect_error(response, 401, "invalid_client", challenge=False)


async def test_wrong_secret_with_client_secret_basic(env: Env) -> None:
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE}
    auth = {"Authorization": basic(env.tenant.client_id, "not-the-secret")}
    response = await post_token(env, data, headers=auth)
    await expect_error(response, 401, "invalid_client", challenge=True)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),
        "Basic " + base64.b64encode(b"id%ff:secret").decode(),
        "Basic ",
        "Bearer some-token",
        "Basic " + base64.b64encode(b"id\x00:secret").decode(),
    ],
)
async def test_malformed_basic_header(env: Env, authorization: str) -> None:
    data = {"grant_type": "client_credentials", "audience": MANAGEMENT_AUDIENCE}
    response = await post_token(env, data, headers={"Authorization": authorization})
    await expect_error(response, 401, "invalid_client", challenge=True)


async def test_client_of_another_tenant_does_not_exist_here(env: Env) -> None:
    other = await bootstrap_tenant(env.settings, "other.example")
    data = {
        "grant_type": "client_credentials",
        "client_id": other.client_id,
        "client_secret": other.client_secret,
        "audience": MANAGEMENT_AUDIENCE,
    }
    await expect_error(await post_token(env, data), 401, "invalid_client")
    # The same credentials work at their own tenant, for its own audience.
    at_home = {**data, "audience": "http://other.example/api/v2/"}
    response = await env.http.post("/oauth/token", data=at_home, headers={"Host": "other.example"})
    assert response.status == 200, await response.text()


async def test_public_client_presenting_a_secret(env: Env) -> None:
    client_id = await add_client(
        env, token_endpoint_auth_method="none", grant_types=["authorization_code"]
    )
    data = {"grant_type": "authorization_code", "code": "abc", "client_id": client_id}
    response = await post_token(env, {**data, "client_secret": "anything"})
    await expect_error(response, 401, "invalid_client")
    auth = {"Authorization": basic(client_id, "anything")}
    del data["client_id"]
    await expect_error(
        await post_token(env, data, headers=auth), 401, "invalid_client", challenge=True
    )


# --- grants: unauthorized_client, invalid_grant, access_denied, invalid_scope --------------------


async def test_client_without_the_client_credentials_grant(env: Env) -> None:
    secret = "an-interactive-app-secret"
    client_id = await add_client(
        env,
        token_endpoint_auth_method="client_secret_post",
        client_secret_hash=hash_secret(secret),
        grant_types=["authorization_code"],
    )
    response = await post_token(env, env.credentials(client_id=client_id, client_secret=secret))
    await expect_error(response, 400, "unauthorized_client")


async def test_public_client_cannot_use_client_credentials(env: Env) -> None:
    # RFC 6749 §4.4: confidential clients only, whatever the client's grant_types say.
    client_id = await add_client(
        env, token_endpoint_auth_method="none", grant_types=["client_credentials"]
    )
    data = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "audience": MANAGEMENT_AUDIENCE,
    }
    await expect_error(await post_token(env, data), 400, "unauthorized_client")


async def test_authorization_code_grant(env: Env) -> None:
    client_id = await add_client(
        env, token_endpoint_auth_method="none", grant_types=["authorization_code"]
    )
    data = {"grant_type": "authorization_code", "client_id": client_id}
    await expect_error(await post_token(env, data), 400, "invalid_request")  # no code
    for code in ("unknown-code", "x" * 2000, "tab\tcode"):
        response = await post_token(env, {**data, "code": code})
        await expect_error(response, 400, "invalid_grant")
    # The lookup is the Redis key /authorize will write.
    assert await env.app[REDIS].exists(f"{env.settings.redis_prefix}authcode:unknown-code") == 0
    # The management client was not given this grant.
    response = await post_token(env, env.credentials(grant_type="authorization_code", code="c"))
    await expect_error(response, 400, "unauthorized_client")


async def test_audience_not_granted_is_access_denied(env: Env) -> None:
    await add_api(env, ORDERS_API, ["read:orders"])
    for audience in (
        ORDERS_API,  # the API exists, the client has no grant on it
        "https://unknown.example.com/api",  # no such API
        MANAGEMENT_API,  # the internal key is not an audience
        "http://other.example/api/v2/",  # another tenant's Management API
        "bad\x01audience",
    ):
        response = await post_token(env, env.credentials(audience=audience))
        await expect_error(response, 403, "access_denied")


async def test_scope_not_granted_is_invalid_scope(env: Env) -> None:
    for scope in ("read:clients create:clients", "openid", 'quote"d'):
        response = await post_token(env, env.credentials(scope=scope))
        await expect_error(response, 400, "invalid_scope")


async def test_error_answers_are_never_cached_nor_500(env: Env) -> None:
    bodies: list[tuple[str | None, str | bytes]] = [
        (FORM, "grant_type=client_credentials&client_id=\x00&client_secret=x&audience=y"),
        (FORM, "%%%%%=&&&==="),
        ("application/json", '{"client_id": "a\\u0000b", "grant_type": "client_credentials"}'),
        ("application/json", "1e999999"),
        ("application/json", "9" * 10_000),
        (
            "application/json",
            '{"grant_type": "authorization_code", "client_id": "x", "code": "\\u0000"}',
        ),
    ]
    for content_type, body in bodies:
        response = await post_token(env, body, content_type=content_type)
        assert 400 <= response.status < 500, (body, await response.text())
        assert response.headers["Cache-Control"] == "no-store"
