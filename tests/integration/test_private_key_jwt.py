"""JWT client authentication, `private_key_jwt` (RFC 7523, OIDC Core §9; issue 23's first
item): a client proves itself with an assertion signed by a key it registered, at the token,
revocation and introspection endpoints; assertions are single use, bounded in time, for this
provider, and signed asymmetrically. Real HTTP against an in-process authorize service."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from authorize_service.resources import CLIENT_JWKS
from authorize_service.tokens.client_jwks import REFETCH_GAP_SECONDS
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.cimd import DocumentPki, document_server, make_pki, static_resolver
from tests.support.services import with_overrides
from tests.support.signin import add_api, add_client, basic_auth

DOMAIN = "pkjwt.example"
ISSUER = f"http://{DOMAIN}/"
TOKEN_ENDPOINT = f"{ISSUER}oauth/token"
API = "appointments:api"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[AuthorizeEnv]:
    async with authorize_env(settings_for("authorize"), DOMAIN, AuthorizeEnv) as environment:
        await add_api(environment, API)
        yield environment


def _public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


async def _jwt_client(env: AuthorizeEnv, key: Any, **extra: Any) -> dict[str, Any]:
    client = await add_client(
        env,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [_public_jwk(key, "k1")]},
        grant_types=["client_credentials"],
        response_types=[],
        **extra,
    )
    await env.db[Collections.CLIENT_GRANTS].insert_one(
        {
            "tenant_id": env.tenant.tenant_id,
            "client_id": client["client_id"],
            "audience": API,
            "scope": ["appointments"],
        }
    )
    return client


def _assertion(
    client_id: str, key: Any, alg: str = "RS256", kid: str | None = "k1", **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers=headers
    )


async def _post(
    env: AuthorizeEnv, path: str, form: dict[str, str], **headers: str
) -> tuple[int, Any]:
    response = await env.http.post(path, data=form, headers={"Host": DOMAIN, **headers})
    text = await response.text()
    return response.status, json.loads(text) if text else None


def _token_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "audience": API,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **extra,
    }


async def test_a_signed_assertion_authenticates_once(env: AuthorizeEnv) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = await _jwt_client(env, key)
    assertion = _assertion(client["client_id"], key)
    status, body = await _post(env, "/oauth/token", _token_form(assertion))
    assert status == 200 and body["scope"] == "appointments", body
    # The same assertion again: a replay (its jti was used).
    status, body = await _post(env, "/oauth/token", _token_form(assertion))
    assert (status, body["error"]) == (401, "invalid_client") and "jti" in body["error_description"]
    # aud may also be the issuer, or the endpoint the assertion is sent to.
    for aud in (ISSUER, f"{ISSUER}oauth/revoke"):
        path = "/oauth/token" if aud == ISSUER else "/oauth/revoke"
        form = _token_form(_assertion(client["client_id"], key, aud=aud))
        if path == "/oauth/revoke":
            form = {k: v for k, v in form.items() if k.startswith("client_")} | {"token": "x"}
        status, body = await _post(env, path, form)
        assert status == 200, (aud, body)


async def test_an_ec_key_and_the_registered_alg(env: AuthorizeEnv) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    client = await _jwt_client(env, key, token_endpoint_auth_signing_alg="ES256")
    status, body = await _post(
        env, "/oauth/token", _token_form(_assertion(client["client_id"], key, "ES256"))
    )
    assert status == 200, body


@pytest.mark.parametrize(
    "case",
    [
        "wrong_aud",
        "expired",
        "too_long_lived",
        "no_jti",
        "other_key",
        "hmac_with_public_key",
        "alg_none",
        "sub_differs",
        "unknown_kid",
        "aud_a_number",
        "aud_an_object",
    ],
)
async def test_bad_assertions_are_invalid_client(env: AuthorizeEnv, case: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = await _jwt_client(env, key)
    cid, now = client["client_id"], int(time.time())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assertion = {
        "wrong_aud": lambda: _assertion(cid, key, aud="https://elsewhere.example/token"),
        "expired": lambda: _assertion(cid, key, iat=now - 900, exp=now - 300),
        "too_long_lived": lambda: _assertion(cid, key, exp=now + 86400),
        "no_jti": lambda: _assertion(cid, key, jti=None),
        "other_key": lambda: _assertion(cid, other),
        "hmac_with_public_key": lambda: _hmac_assertion(cid, public_pem),
        "alg_none": lambda: _none_assertion(cid),
        "sub_differs": lambda: _assertion(cid, key, sub="someone-else"),
        "unknown_kid": lambda: _assertion(cid, key, kid="k2"),
        # The client's own key, a claim of the wrong shape: invalid_client, never a 500.
        "aud_a_number": lambda: _assertion(cid, key, aud=42),
        "aud_an_object": lambda: _assertion(cid, key, aud={"x": TOKEN_ENDPOINT}),
    }[case]()
    status, body = await _post(env, "/oauth/token", _token_form(assertion))
    assert status == 401 and body["error"] == "invalid_client", (case, body)


def _hmac_assertion(client_id: str, secret: bytes) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "exp": now + 60,
        "jti": "h",
    }
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _none_assertion(client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "exp": now + 60,
        "jti": "n",
    }
    return jwt.encode(claims, None, algorithm="none")


async def test_methods_do_not_mix(env: AuthorizeEnv) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = await _jwt_client(env, key)
    secret_client = await add_client(env, grant_types=["client_credentials"], response_types=[])
    assertion = _assertion(client["client_id"], key)
    # A secret and an assertion together: one method only (RFC 6749 §2.3).
    status, body = await _post(env, "/oauth/token", _token_form(assertion, client_secret="x"))
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await _post(
        env,
        "/oauth/token",
        _token_form(assertion),
        Authorization=basic_auth(secret_client["client_id"], secret_client["client_secret"]),
    )
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await _post(
        env, "/oauth/token", _token_form(assertion, client_assertion_type="urn:other")
    )
    assert (status, body["error"]) == (400, "invalid_request")
    # The private_key_jwt client cannot fall back to presenting just its id.
    status, body = await _post(
        env,
        "/oauth/token",
        {"grant_type": "client_credentials", "audience": API, "client_id": client["client_id"]},
    )
    assert (status, body["error"]) == (401, "invalid_client")
    # A client registered for a secret cannot switch to an assertion.
    foreign = _assertion(secret_client["client_id"], key)
    status, body = await _post(env, "/oauth/token", _token_form(foreign))
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DocumentPki:
    return make_pki(tmp_path_factory.mktemp("jwks-pki"))


async def test_keys_from_jwks_uri_fetched_cached_and_refetched_for_a_new_kid(
    settings_for: SettingsFactory, pki: DocumentPki
) -> None:
    """`jwks_uri` instead of `jwks`: fetched under the metadata-document fetcher's guard (the
    test CA trusted, client.test allowed to be loopback), cached, fetched again when an
    assertion names a kid the cached set lacks (after the refetch gap)."""
    settings = with_overrides(
        settings_for("authorize"),
        cimd_ca_file=str(pki.ca_file),
        cimd_private_hosts=("client.test",),
    )
    async with document_server(pki) as docs, authorize_env(settings, DOMAIN, AuthorizeEnv) as env:
        await add_api(env, API)
        env.app[CLIENT_JWKS].fetcher.resolve = static_resolver({"client.test": ["127.0.0.1"]})
        old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab")
        docs.serve_json("/jwks.json", {"keys": [_public_jwk(old, "k1")]})
        client = await add_client(
            env,
            token_endpoint_auth_method="private_key_jwt",
            jwks_uri=docs.url("/jwks.json"),
            grant_types=["client_credentials"],
            response_types=[],
        )
        await env.db[Collections.CLIENT_GRANTS].insert_one(
            {
                "tenant_id": env.tenant.tenant_id,
                "client_id": client["client_id"],
                "audience": API,
                "scope": ["appointments"],
            }
        )
        for _ in range(2):
            status, body = await _post(
                env, "/oauth/token", _token_form(_assertion(client["client_id"], old))
            )
            assert status == 200, body
        assert docs.hits["/jwks.json"] == 1  # cached
        # The client rotates: a new kid, published at its jwks_uri.
        docs.serve_json("/jwks.json", {"keys": [_public_jwk(new, "k2")]})
        rotated = _assertion(client["client_id"], new, kid="k2")
        status, body = await _post(env, "/oauth/token", _token_form(rotated))
        assert (status, body["error"]) == (401, "invalid_client")  # within the refetch gap
        cache = env.app[CLIENT_JWKS]
        for key in list(cache._cache._entries):  # as if the gap had passed
            fetched_at, jwks = cache._cache._entries[key]
            cache._cache._entries[key] = (fetched_at - REFETCH_GAP_SECONDS, jwks)
        status, body = await _post(
            env, "/oauth/token", _token_form(_assertion(client["client_id"], new, kid="k2"))
        )
        assert status == 200, body
        assert docs.hits["/jwks.json"] == 2
