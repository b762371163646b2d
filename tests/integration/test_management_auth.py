"""Management API token verification, exercised on the tenant-settings service over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oidc_common.management_api import MANAGEMENT_API
from oidc_common.mongo import Collections, open_client
from tenant_settings_service.app import create_app
from tests.conftest import SettingsFactory
from tests.support.services import serve
from tests.support.tenants import bootstrap_tenant
from tests.support.tokens import (
    machine_claims,
    management_claims,
    management_client_id,
    management_token,
    tenant_signing_key,
)

HOST = "acme.example"
ISSUER = f"http://{HOST}/"
URL = "/api/v2/tenants/settings"


@dataclass
class Ctx:
    client: TestClient[Any, Any]
    settings: Any
    tenant_id: str
    other_tenant_id: str


@pytest.fixture
async def ctx(settings_for: SettingsFactory) -> AsyncIterator[Ctx]:
    settings = settings_for("tenant-settings")
    tenant = await bootstrap_tenant(settings, HOST)
    other = await bootstrap_tenant(settings, "other.example")
    async with serve(create_app(settings)) as client:
        yield Ctx(client, settings, tenant.tenant_id, other.tenant_id)


async def _get(ctx: Ctx, token: str | None, host: str = HOST) -> tuple[int, dict[str, Any], str]:
    headers = {"Host": host}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await ctx.client.get(URL, headers=headers)
    return response.status, await response.json(), response.headers.get("WWW-Authenticate", "")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_valid_token_is_accepted(ctx: Ctx) -> None:
    token = await management_token(ctx.settings, ctx.tenant_id, ISSUER)
    status, body, _ = await _get(ctx, token)
    assert status == 200
    assert body["flags"]["enable_dynamic_client_registration"] is False


async def _assert_invalid(ctx: Ctx, token: str | None, host: str = HOST) -> None:
    status, body, challenge = await _get(ctx, token, host)
    assert status == 401, body
    assert body["statusCode"] == 401 and body["errorCode"] == "invalid_token"
    assert challenge.startswith('Bearer error="invalid_token"')


async def test_missing_and_malformed_tokens(ctx: Ctx) -> None:
    status, body, challenge = await _get(ctx, None)
    # RFC 6750 §3.1: a request without credentials gets a bare challenge.
    assert (status, body["errorCode"], challenge) == (401, "invalid_token", "Bearer")
    await _assert_invalid(ctx, "")
    await _assert_invalid(ctx, "not-a-jwt")
    await _assert_invalid(ctx, "a.b.c")
    response = await ctx.client.get(
        URL, headers={"Host": HOST, "Authorization": "Basic Zm9vOmJhcg=="}
    )
    assert response.status == 401


async def test_alg_none_is_rejected(ctx: Ctx) -> None:
    kid, _ = await tenant_signing_key(ctx.settings, ctx.tenant_id)
    # Typed as an access token, so only the algorithm handling can refuse it.
    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    unsigned = f"{_b64(header)}.{_b64(management_claims(ISSUER))}."
    await _assert_invalid(ctx, unsigned)


async def test_hs256_signed_with_the_public_key_is_rejected(ctx: Ctx) -> None:
    kid, private_key = await tenant_signing_key(ctx.settings, ctx.tenant_id)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Classic algorithm confusion: HMAC keyed with the public key the verifier holds.
    header = _b64({"alg": "HS256", "typ": "at+jwt", "kid": kid})
    payload = _b64(management_claims(ISSUER))
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    await _assert_invalid(ctx, forged)


async def test_wrong_issuer_audience_and_expiry(ctx: Ctx) -> None:
    s, t = ctx.settings, ctx.tenant_id
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, iss="https://evil.example/"))
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, aud="https://api.example/"))
    now = int(time.time())
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, iat=now - 7200, exp=now - 3600))
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, nbf=now + 3600))
    # exp is required.
    kid, key = await tenant_signing_key(s, t)
    claims = management_claims(ISSUER)
    del claims["exp"]
    await _assert_invalid(
        ctx, jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
    )


async def test_a_jwt_that_is_not_an_access_token_is_rejected(ctx: Ctx) -> None:
    kid, key = await tenant_signing_key(ctx.settings, ctx.tenant_id)
    caller = machine_claims(await management_client_id(ctx.settings, ctx.tenant_id))
    claims = management_claims(ISSUER, **caller)
    for typ in ("JWT", "dpop+jwt"):  # e.g. an ID token signed by the same key
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": typ})
        await _assert_invalid(ctx, token)
    ok = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
    assert (await _get(ctx, ok))[0] == 200


async def test_unknown_kid_and_foreign_key_are_rejected(ctx: Ctx) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = management_claims(ISSUER)
    await _assert_invalid(
        ctx,
        jwt.encode(
            claims, stranger, algorithm="RS256", headers={"kid": "unknown", "typ": "at+jwt"}
        ),
    )
    kid, _ = await tenant_signing_key(ctx.settings, ctx.tenant_id)
    # The right kid, a key that is not the tenant's.
    await _assert_invalid(
        ctx, jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
    )
    # No kid at all.
    await _assert_invalid(
        ctx, jwt.encode(claims, stranger, algorithm="RS256", headers={"typ": "at+jwt"})
    )


async def test_token_of_another_tenant_is_refused(ctx: Ctx) -> None:
    token_for_other = await management_token(
        ctx.settings, ctx.other_tenant_id, "http://other.example/"
    )
    assert (await _get(ctx, token_for_other, host="other.example"))[0] == 200
    await _assert_invalid(ctx, token_for_other, host=HOST)
    # Even re-aimed at this tenant's issuer and audience, the other tenant's key is not ours.
    forged = await management_token(ctx.settings, ctx.other_tenant_id, ISSUER)
    await _assert_invalid(ctx, forged, host=HOST)


async def test_missing_scope_is_403(ctx: Ctx) -> None:
    token = await management_token(ctx.settings, ctx.tenant_id, ISSUER, scopes=("read:clients",))
    status, body, challenge = await _get(ctx, token)
    assert status == 403
    assert body["errorCode"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in challenge and "read:tenant_settings" in challenge
    read_only = await management_token(
        ctx.settings, ctx.tenant_id, ISSUER, scopes=("read:tenant_settings",)
    )
    response = await ctx.client.patch(
        URL,
        json={"friendly_name": "x"},
        headers={"Host": HOST, "Authorization": f"Bearer {read_only}"},
    )
    assert response.status == 403
    assert (await response.json())[
        "message"
    ] == "Insufficient scope, expected: update:tenant_settings"


# Only a client's own client-credentials token, of a live client that still holds a client
# grant for the Management API, is accepted (RFC 9700 §2.3): issue 21's privilege escalation
# came from a user's token with the Management API audience and the scopes it asked for.


async def test_a_users_token_is_refused_whatever_its_audience_and_scope(ctx: Ctx) -> None:
    s, t = ctx.settings, ctx.tenant_id
    client_id = await management_client_id(s, t)
    # A user's token as /authorize or the code grant mint it: `sub` a user, no `gty`.
    user = {"sub": "auth0|0123456789abcdef01234567", "azp": client_id, "client_id": client_id}
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, gty=None, **user))
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, **user))
    # A machine token whose subject is another client than the one it names.
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, sub="other@clients"))
    await _assert_invalid(ctx, await management_token(s, t, ISSUER, gty="password"))


async def _db_command(ctx: Ctx, collection: str, query: dict[str, Any], update: Any) -> None:
    client = open_client(ctx.settings.mongodb_url)
    try:
        target = client[ctx.settings.mongodb_database][collection]
        if update is None:
            await target.delete_many(query)
        else:
            await target.update_one(query, update)
    finally:
        await client.close()


async def test_a_revoked_or_narrowed_grant_stops_its_tokens_at_once(ctx: Ctx) -> None:
    s, t = ctx.settings, ctx.tenant_id
    client_id = await management_client_id(s, t)
    token = await management_token(s, t, ISSUER)
    assert (await _get(ctx, token))[0] == 200
    grant = {"tenant_id": t, "client_id": client_id, "audience": MANAGEMENT_API}
    # Narrowed: the token still says read:tenant_settings, the grant no longer does.
    await _db_command(ctx, Collections.CLIENT_GRANTS, grant, {"$set": {"scope": ["read:users"]}})
    status, body, _ = await _get(ctx, token)
    assert (status, body["errorCode"]) == (403, "insufficient_scope")
    await _db_command(ctx, Collections.CLIENT_GRANTS, grant, None)
    await _assert_invalid(ctx, token)


async def test_a_deleted_clients_token_is_refused(ctx: Ctx) -> None:
    s, t = ctx.settings, ctx.tenant_id
    client_id = await management_client_id(s, t)
    token = await management_token(s, t, ISSUER)
    assert (await _get(ctx, token))[0] == 200
    await _db_command(ctx, Collections.CLIENTS, {"_id": client_id, "tenant_id": t}, None)
    await _assert_invalid(ctx, token)
