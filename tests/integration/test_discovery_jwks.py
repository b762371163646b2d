"""Discovery, the JWKS and signing-key rotation, against real MongoDB and Redis.

The rotation CLI is run as an operator runs it: a separate process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from authorize_service.app import create_app
from authorize_service.resources import KEYSTORE, TENANT_SETTINGS
from oidc_common.config import Settings
from oidc_common.mongo import Collections
from oidc_common.service import DB, REDIS
from tests.conftest import SettingsFactory
from tests.support.authorize import AuthorizeEnv, authorize_env
from tests.support.services import serve, settings_env
from tests.support.tenants import bootstrap_tenant

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


Env = AuthorizeEnv


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[Env]:
    async with authorize_env(settings_for("authorize"), "auth.example.com", Env) as environment:
        yield environment


HOST = {"Host": "auth.example.com"}
ISSUER = "http://auth.example.com/"


async def discovery(env: Env, headers: dict[str, str] = HOST) -> dict[str, Any]:
    response = await env.http.get("/.well-known/openid-configuration", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body


async def jwks(env: Env) -> list[dict[str, Any]]:
    response = await env.http.get("/.well-known/jwks.json", headers=HOST)
    assert response.status == 200, await response.text()
    keys: list[dict[str, Any]] = (await response.json())["keys"]
    return keys


async def access_token(
    env: Env, issuer: str = ISSUER, headers: dict[str, str] | None = None
) -> str:
    """A Management API token for the tenant, asked for through `headers` (the Host)."""
    response = await env.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env.tenant.client_id,
            "client_secret": env.tenant.client_secret,
            "audience": f"{issuer}api/v2/",
        },
        headers=headers or HOST,
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["access_token"]
    return token


def verify(token: str, published: list[dict[str, Any]]) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [key for key in published if key["kid"] == kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=f"{ISSUER}api/v2/",
        issuer=ISSUER,
    )
    return claims


async def rotate(settings: Settings, domain: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authorize_service",
        "rotate-signing-key",
        "--domain",
        domain,
        env={**os.environ, **settings_env(settings), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# --- discovery -------------------------------------------------------------------------------


def assert_urls_on(metadata: dict[str, Any], issuer: str) -> None:
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == f"{issuer}authorize"
    assert metadata["token_endpoint"] == f"{issuer}oauth/token"
    assert metadata["userinfo_endpoint"] == f"{issuer}userinfo"
    assert metadata["jwks_uri"] == f"{issuer}.well-known/jwks.json"
    if "registration_endpoint" in metadata:
        assert metadata["registration_endpoint"] == f"{issuer}oidc/register"


async def test_metadata_is_complete_and_built_on_the_host(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "localhost")
    async with serve(create_app(settings)) as http:
        response = await http.get(
            "/.well-known/openid-configuration", headers={"Host": "localhost:8080"}
        )
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "max-age=60" in response.headers["Cache-Control"]
        metadata = await response.json()
    assert_urls_on(metadata, "http://localhost:8080/")
    assert metadata == {
        "issuer": "http://localhost:8080/",
        "authorization_endpoint": "http://localhost:8080/authorize",
        "token_endpoint": "http://localhost:8080/oauth/token",
        "userinfo_endpoint": "http://localhost:8080/userinfo",
        "jwks_uri": "http://localhost:8080/.well-known/jwks.json",
        # Issue 22: revocation (RFC 7009) and introspection (RFC 7662).
        "revocation_endpoint": "http://localhost:8080/oauth/revoke",
        "introspection_endpoint": "http://localhost:8080/oauth/introspect",
        "end_session_endpoint": "http://localhost:8080/oidc/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        # Sign-in (issue 9): what /authorize answers to, said truthfully.
        "prompt_values_supported": ["consent", "login", "none"],
        "authorization_response_iss_parameter_supported": True,
        "response_types_supported": ["code", "token", "id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "RS256"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "claims_supported": metadata["claims_supported"],
        "code_challenge_methods_supported": ["S256"],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    }
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email"} <= set(
        metadata["claims_supported"]
    ) and "email_verified" in metadata["claims_supported"]


async def test_metadata_follows_the_trusted_gateway(env: Env) -> None:
    forwarded = {
        "Host": "127.0.0.1:8002",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "auth.example.com",
    }
    metadata = await discovery(env, forwarded)
    assert_urls_on(metadata, "https://auth.example.com/")
    # The token endpoint issues tokens for the same issuer the metadata names.
    token = await access_token(env, "https://auth.example.com/", forwarded)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == metadata["issuer"]


async def test_registration_endpoint_follows_the_tenant_flag(env: Env) -> None:
    assert "registration_endpoint" not in await discovery(env)  # off by default

    db = env.app[DB]
    await db[Collections.TENANT_SETTINGS].update_one(
        {"_id": env.tenant.tenant_id},
        {
            "$set": {"settings.flags.enable_dynamic_client_registration": True},
            "$inc": {"version": 1},
        },
    )
    # The first read filled Redis with version 1; drop it so this read sees MongoDB.
    await env.app[REDIS].delete(env.app[TENANT_SETTINGS].key(env.tenant.tenant_id))
    metadata = await discovery(env)
    assert metadata["registration_endpoint"] == f"{ISSUER}oidc/register"
    assert_urls_on(metadata, ISSUER)


async def test_registration_endpoint_omitted_when_settings_cannot_be_read(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    # Flag on, but the settings cannot be read from Redis (evicted) nor parsed from MongoDB:
    # the metadata is still served, without the registration endpoint (fail closed).
    db = env.app[DB]
    await db[Collections.TENANT_SETTINGS].update_one(
        {"_id": env.tenant.tenant_id},
        {
            "$set": {"settings.flags.enable_dynamic_client_registration": True},
            "$unset": {"version": ""},
        },
    )
    await env.app[REDIS].delete(env.app[TENANT_SETTINGS].key(env.tenant.tenant_id))
    with caplog.at_level(logging.WARNING, logger="authorize_service.discovery"):
        metadata = await discovery(env)
    assert "registration_endpoint" not in metadata
    assert metadata["issuer"] == ISSUER
    assert "tenant settings unavailable" in caplog.text


async def test_unknown_host_gets_no_metadata(env: Env) -> None:
    response = await env.http.get(
        "/.well-known/openid-configuration", headers={"Host": "stranger.example"}
    )
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


# --- JWKS ------------------------------------------------------------------------------------


async def test_jwks_publishes_only_public_members(env: Env) -> None:
    response = await env.http.get("/.well-known/jwks.json", headers=HOST)
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    [key] = (await response.json())["keys"]
    assert key["kid"] == env.tenant.kid
    assert key["use"] == "sig" and key["alg"] == "RS256" and key["kty"] == "RSA"
    assert set(key) == {"kty", "n", "e", "kid", "use", "alg"}
    assert not PRIVATE_MEMBERS & set(key)
    verify(await access_token(env), [key])


async def test_jwks_never_leaks_a_private_member_stored_by_mistake(env: Env) -> None:
    db = env.app[DB]
    await db[Collections.SIGNING_KEYS].update_one(
        {"tenant_id": env.tenant.tenant_id, "kid": env.tenant.kid},
        {"$set": {"public_jwk.d": "c2VjcmV0", "public_jwk.p": "c2VjcmV0"}},
    )
    env.app[KEYSTORE].forget(env.tenant.tenant_id)
    [key] = await jwks(env)
    assert not PRIVATE_MEMBERS & set(key)


async def test_jwks_is_per_tenant(env: Env) -> None:
    other = await bootstrap_tenant(env.settings, "other.example")
    response = await env.http.get("/.well-known/jwks.json", headers={"Host": "other.example"})
    [key] = (await response.json())["keys"]
    assert key["kid"] == other.kid != env.tenant.kid
    assert [key["kid"] for key in await jwks(env)] == [env.tenant.kid]


# --- rotation --------------------------------------------------------------------------------


async def test_rotation_keeps_old_tokens_verifiable_and_signs_with_the_new_key(env: Env) -> None:
    old_kid = env.tenant.kid
    before = await access_token(env)
    assert jwt.get_unverified_header(before)["kid"] == old_kid

    started = dt.datetime.now(dt.UTC)
    code, out, err = await rotate(env.settings, "Auth.Example.com")
    assert code == 0, err
    assert "Traceback" not in err

    db = env.app[DB]
    stored = {
        doc["kid"]: doc
        async for doc in db[Collections.SIGNING_KEYS].find({"tenant_id": env.tenant.tenant_id})
    }
    assert len(stored) == 2
    [new_kid] = [kid for kid, doc in stored.items() if doc["status"] == "current"]
    assert new_kid != old_kid and new_kid in out
    assert stored[old_kid]["status"] == "previous"
    window = stored[old_kid]["publish_until"] - started
    ttl = dt.timedelta(seconds=env.settings.access_token_ttl)
    assert ttl + dt.timedelta(minutes=5) <= window < ttl + dt.timedelta(minutes=5, seconds=30)
    assert "PRIVATE KEY" not in repr(stored[new_kid])

    # The service caches keys for up to a minute; forgetting them stands in for that minute.
    env.app[KEYSTORE].forget(env.tenant.tenant_id)
    published = await jwks(env)
    assert [key["kid"] for key in published] == [new_kid, old_kid]
    assert all(not PRIVATE_MEMBERS & set(key) for key in published)
    assert verify(before, published)["sub"] == f"{env.tenant.client_id}@clients"

    after = await access_token(env)
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    verify(after, published)


async def test_rotation_retires_keys_whose_window_has_closed(env: Env) -> None:
    assert (await rotate(env.settings, "auth.example.com"))[0] == 0
    assert (await rotate(env.settings, "auth.example.com"))[0] == 0
    db = env.app[DB]
    keys = db[Collections.SIGNING_KEYS]
    tenant = {"tenant_id": env.tenant.tenant_id}
    env.app[KEYSTORE].forget(env.tenant.tenant_id)
    assert len(await jwks(env)) == 3  # current + two previous still in their window

    # The first key's window closes; the next rotation retires it and drops its private key.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await keys.update_one({**tenant, "kid": env.tenant.kid}, {"$set": {"publish_until": past}})
    env.app[KEYSTORE].forget(env.tenant.tenant_id)
    assert env.tenant.kid not in [key["kid"] for key in await jwks(env)]  # unpublished at once
    assert (await rotate(env.settings, "auth.example.com"))[0] == 0
    first = await keys.find_one({**tenant, "kid": env.tenant.kid})
    assert first is not None and first["status"] == "retired"
    assert "sealed_private_key" not in first
    assert await keys.count_documents({**tenant, "status": "current"}) == 1
    assert await keys.count_documents({**tenant, "status": "previous"}) == 2


async def test_two_current_keys_sign_with_the_newest(env: Env) -> None:
    # What a rotation that crashed between its two writes leaves behind.
    db = env.app[DB]
    assert (await rotate(env.settings, "auth.example.com"))[0] == 0
    await db[Collections.SIGNING_KEYS].update_many(
        {"tenant_id": env.tenant.tenant_id}, {"$set": {"status": "current"}}
    )
    newest = await db[Collections.SIGNING_KEYS].find_one(
        {"tenant_id": env.tenant.tenant_id, "kid": {"$ne": env.tenant.kid}}
    )
    assert newest is not None
    env.app[KEYSTORE].forget(env.tenant.tenant_id)
    token = await access_token(env)
    assert jwt.get_unverified_header(token)["kid"] == newest["kid"]
    published = await jwks(env)
    assert {key["kid"] for key in published} == {newest["kid"], env.tenant.kid}
    verify(token, published)


async def test_rotation_for_an_unknown_domain_is_a_clear_error(env: Env) -> None:
    code, _, err = await rotate(env.settings, "nobody.example")
    assert code == 1
    assert "nobody.example" in err and "Traceback" not in err
    db = env.app[DB]
    assert await db[Collections.SIGNING_KEYS].count_documents({}) == 1


async def test_rotation_without_kek_is_a_clear_error(env: Env) -> None:
    code, _, err = await rotate(env.settings, "auth.example.com", KEY_ENCRYPTION_KEY="")
    assert code == 2
    assert "KEY_ENCRYPTION_KEY" in err and "Traceback" not in err
    db = env.app[DB]
    assert await db[Collections.SIGNING_KEYS].count_documents({}) == 1
