"""Issue 21 through the real gateway and service processes: the Management API escalation
through an RFC 8707 prefix (point 1) and a compressed body breaking the next request on a
kept-alive connection (point 2)."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from oidc_common.mongo import Collections, open_client
from oidc_common.settings_cache import SettingsCache
from tests.support.backing import BackingServices
from tests.support.gateway import Edge, SignInTenant, pkce_pair

PREFIXES = "settings.dynamic_client_registration.resource_indicators.allowed_url_prefixes"
CALLBACK = "https://app.example.com/callback"


@pytest.fixture
async def stored_prefixes(
    edge: Edge,
    tenant: SignInTenant,
    backing: BackingServices,
    stack_processes: tuple[int, dict[str, str], str],
) -> AsyncIterator[None]:
    """The tenant's own origin written straight into its stored prefixes (as a PATCH before
    the fix could leave it), the settings cache refilled; put back through the API after."""
    tag = stack_processes[2]
    mongo = open_client(backing.mongodb_url)
    redis = Redis.from_url(backing.redis_url)
    db = mongo[f"t_{tag}"]
    try:
        found = await db[Collections.TENANTS].find_one({"domain": "localhost"})
        assert found is not None
        tenant_id = found["_id"]
        await db[Collections.TENANT_SETTINGS].update_one(
            {"_id": tenant_id}, {"$set": {PREFIXES: [edge.issuer]}, "$inc": {"version": 1}}
        )
        cache = SettingsCache(redis, db, f"t_{tag}:")
        snapshot = await cache.from_mongodb(tenant_id)
        assert snapshot is not None
        assert await cache.apply(snapshot)
        yield
    finally:
        await mongo.close()
        await redis.aclose()
        status, body = await edge.call(
            "PATCH",
            "/api/v2/tenants/settings",
            headers={"Authorization": f"Bearer {tenant.management_token}"},
            json={
                "dynamic_client_registration": {"resource_indicators": {"allowed_url_prefixes": []}}
            },
        )
        assert status == 200, body


async def test_a_prefix_on_the_tenants_origin_is_refused_at_the_patch(
    edge: Edge, tenant: SignInTenant
) -> None:
    status, body = await edge.call(
        "PATCH",
        "/api/v2/tenants/settings",
        headers={"Authorization": f"Bearer {tenant.management_token}"},
        json={
            "dynamic_client_registration": {
                "resource_indicators": {"allowed_url_prefixes": [edge.issuer]}
            }
        },
    )
    assert status == 400, body
    assert body["errorCode"] == "invalid_body"
    assert "resource_indicators.allowed_url_prefixes[0]" in body["message"]


@pytest.mark.usefixtures("stored_prefixes")
async def test_a_stored_prefix_on_the_tenants_origin_yields_no_management_api_token(
    edge: Edge, tenant: SignInTenant
) -> None:
    client = await edge.register({"client_name": "Escalator", "redirect_uris": [CALLBACK]})
    _, challenge = pkce_pair()
    query = urllib.parse.urlencode(
        {
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
            "scope": "openid create:users update:tenant_settings read:clients",
            "resource": f"{edge.issuer}api/v2/",
        }
    )
    async with edge.session.get(
        f"{edge.base}/authorize?{query}",
        headers={"Host": f"localhost:{edge.port}"},
        allow_redirects=False,
    ) as response:
        assert response.status in (302, 303), await response.text()
        location = urllib.parse.urlsplit(response.headers["Location"])
    params = dict(urllib.parse.parse_qsl(location.query))
    assert location._replace(query="").geturl() == CALLBACK
    assert params["error"] == "invalid_target" and params["state"] == "s1", params


async def test_a_compressed_body_never_costs_the_next_request(
    edge: Edge, tenant: SignInTenant
) -> None:
    """Bad gzip bodies and ordinary token requests side by side, many rounds: every bad one is
    a 415, every ordinary one gets its own answer, never a 502."""
    url = f"{edge.base}/oauth/token"
    host = {"Host": f"localhost:{edge.port}"}
    form = {
        "grant_type": "client_credentials",
        "client_id": edge.creds["client_id"],
        "client_secret": edge.creds["client_secret"],
        "audience": f"{edge.issuer}api/v2/",
    }

    async def bad() -> int:
        async with edge.session.post(
            url,
            data=b"\x1f\x8b\x08 broken",
            headers={
                **host,
                "Content-Encoding": "gzip",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ) as response:
            await response.read()
            return response.status

    async def ordinary() -> int:
        async with edge.session.post(url, data=form, headers=host) as response:
            await response.read()
            return response.status

    statuses: list[int] = []
    for _ in range(40):
        statuses += await asyncio.gather(bad(), ordinary(), bad(), ordinary())
    assert statuses.count(502) == 0
    assert statuses[0::2].count(415) == len(statuses) // 2, statuses
    assert statuses[1::2].count(200) == len(statuses) // 2, statuses
