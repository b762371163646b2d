"""`/api/v2/resource-servers` over real HTTP against real MongoDB: the tenant's APIs in
Auth0's shape, the Management API shown as a system API that cannot be deleted, every
malformed request answered 400, and `find_resource_server`, the reader `/authorize` uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from authorize_service.resource_servers import ResourceServer, find_resource_server
from oidc_common.management_api import MANAGEMENT_API, MANAGEMENT_SCOPES
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import ManagementEnv, expect_management_error, management_env
from tests.support.tokens import management_token

DOMAIN = "acme.example"
ISSUER = f"http://{DOMAIN}/"
MANAGEMENT_AUDIENCE = f"{ISSUER}api/v2/"
SEED_API = {
    "identifier": "appointments:api",
    "name": "Appointments API",
    "scopes": [
        {"value": "appointments", "description": "Read and manage your appointments"},
        {"value": "contacts", "description": "Read your contacts"},
    ],
}
API_FIELDS = {
    "id",
    "name",
    "is_system",
    "identifier",
    "scopes",
    "signing_alg",
    "allow_offline_access",
    "skip_consent_for_verifiable_first_party_clients",
    "token_lifetime",
}


class Env(ManagementEnv):
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.call("POST", "/api/v2/resource-servers", body=body)
        created = await response.json()
        assert response.status == 201, created
        return dict(created)

    async def count(self) -> int:
        return await self.db[Collections.RESOURCE_SERVERS].count_documents({})


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[Env]:
    async with management_env(settings_for("authorize"), DOMAIN, Env) as environment:
        yield environment


async def test_create_the_seed_api_and_read_it_back(env: Env) -> None:
    api = await env.create(
        {**SEED_API, "signing_alg": "RS256", "allow_offline_access": True, "token_lifetime": 7200}
    )
    assert set(api) == API_FIELDS
    assert len(api["id"]) == 24 and int(api["id"], 16) >= 0
    assert api["identifier"] == "appointments:api" and api["name"] == "Appointments API"
    assert api["scopes"] == SEED_API["scopes"]
    assert api["is_system"] is False and api["signing_alg"] == "RS256"
    assert api["allow_offline_access"] is True and api["token_lifetime"] == 7200
    assert api["skip_consent_for_verifiable_first_party_clients"] is False

    # By id, and by identifier (Auth0 accepts either in the path).
    for key in (api["id"], "appointments:api", quote("appointments:api", safe="")):
        response = await env.call("GET", f"/api/v2/resource-servers/{key}")
        assert response.status == 200 and await response.json() == api, key

    stored = await env.db[Collections.RESOURCE_SERVERS].find_one({"identifier": "appointments:api"})
    assert stored is not None and stored["tenant_id"] == env.tenant.tenant_id
    assert stored["scopes"] == SEED_API["scopes"]


async def test_defaults_and_url_identifiers(env: Env) -> None:
    identifier = "https://orders.example.com/api"
    api = await env.create({"identifier": identifier})
    assert api["name"] == identifier  # Auth0 names an unnamed API after its identifier
    assert api["scopes"] == [] and api["signing_alg"] == "RS256"
    assert api["allow_offline_access"] is False
    assert api["token_lifetime"] == env.settings.access_token_ttl  # the service's default
    response = await env.call("GET", f"/api/v2/resource-servers/{quote(identifier, safe='')}")
    assert response.status == 200 and (await response.json())["id"] == api["id"]


async def test_the_management_api_is_listed_as_a_system_api(env: Env) -> None:
    created = await env.create(SEED_API)
    response = await env.call("GET", "/api/v2/resource-servers")
    listed = await response.json()
    assert response.status == 200 and len(listed) == 2
    system, custom = listed
    assert custom == created
    assert set(system) == API_FIELDS
    assert system["is_system"] is True and system["name"] == "Management API"
    # Shown by its audience (as Auth0 shows its own), scopes in Auth0's object shape although
    # the bootstrap stores them as plain strings.
    assert system["identifier"] == MANAGEMENT_AUDIENCE
    assert [s["value"] for s in system["scopes"]] == list(MANAGEMENT_SCOPES)
    assert all(s["description"] == "" for s in system["scopes"])

    by_audience = await env.call(
        "GET", f"/api/v2/resource-servers/{quote(MANAGEMENT_AUDIENCE, safe='')}"
    )
    assert by_audience.status == 200 and await by_audience.json() == system
    by_id = await env.call("GET", f"/api/v2/resource-servers/{system['id']}")
    assert by_id.status == 200 and await by_id.json() == system
    # The internal key is not an audience.
    internal = await env.call("GET", f"/api/v2/resource-servers/{MANAGEMENT_API}")
    await expect_management_error(internal, 404, "inexistent_resource_server")

    # It cannot be deleted, by id or by audience.
    for key in (system["id"], quote(MANAGEMENT_AUDIENCE, safe="")):
        response = await env.call("DELETE", f"/api/v2/resource-servers/{key}")
        await expect_management_error(response, 400, "operation_not_supported")
    assert await env.count() == 2


async def test_paging_and_totals(env: Env) -> None:
    for index in range(3):
        await env.create({"identifier": f"api-{index}"})
    response = await env.call(
        "GET",
        "/api/v2/resource-servers",
        params={"page": "1", "per_page": "2", "include_totals": "true"},
    )
    body = await response.json()
    assert response.status == 200
    assert {k: v for k, v in body.items() if k != "resource_servers"} == {
        "start": 2,
        "limit": 2,
        "length": 2,
        "total": 4,
    }
    assert [api["identifier"] for api in body["resource_servers"]] == ["api-1", "api-2"]
    for params in ({"per_page": "0"}, {"page": "x"}, {"include_totals": "1"}):
        response = await env.call("GET", "/api/v2/resource-servers", params=params)
        await expect_management_error(response, 400, "invalid_query_string")


async def test_duplicate_identifier_is_a_conflict(env: Env) -> None:
    await env.create(SEED_API)
    response = await env.call(
        "POST", "/api/v2/resource-servers", body={"identifier": "appointments:api"}
    )
    await expect_management_error(response, 409, "conflict")
    assert await env.count() == 2


def scope(value: Any, description: Any = "d") -> dict[str, Any]:
    return {"value": value, "description": description}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param({"name": "No identifier"}, "identifier", id="missing-identifier"),
        pytest.param({"identifier": 5}, "identifier", id="identifier-number"),
        pytest.param({"identifier": None}, "identifier", id="identifier-null"),
        pytest.param({"identifier": ""}, "identifier", id="identifier-empty"),
        pytest.param({"identifier": " api"}, "identifier", id="identifier-space"),
        pytest.param({"identifier": "a\tb"}, "identifier", id="identifier-control"),
        pytest.param({"identifier": "x" * 601}, "identifier", id="identifier-long"),
        pytest.param({"identifier": MANAGEMENT_API}, "Management API", id="internal-key"),
        pytest.param({"identifier": MANAGEMENT_AUDIENCE}, "Management API", id="mgmt-audience"),
        pytest.param(
            {"identifier": "https://acme.example/api/v2"}, "Management API", id="mgmt-https"
        ),
        pytest.param({"identifier": "a", "name": 3}, "name", id="name-number"),
        pytest.param({"identifier": "a", "name": "<b>API</b>"}, "name", id="name-angle"),
        pytest.param({"identifier": "a", "name": "  "}, "name", id="name-blank"),
        pytest.param({"identifier": "a", "scopes": "read"}, "scopes", id="scopes-string"),
        pytest.param({"identifier": "a", "scopes": ["read"]}, "scopes[0]", id="scope-string"),
        pytest.param({"identifier": "a", "scopes": [{"description": "x"}]}, "value", id="no-val"),
        pytest.param({"identifier": "a", "scopes": [scope(1)]}, "value", id="value-number"),
        pytest.param({"identifier": "a", "scopes": [scope("read all")]}, "value", id="space"),
        pytest.param({"identifier": "a", "scopes": [scope('say"hi')]}, "value", id="quote"),
        pytest.param({"identifier": "a", "scopes": [scope("")]}, "value", id="value-empty"),
        pytest.param({"identifier": "a", "scopes": [scope("r", 5)]}, "description", id="desc"),
        pytest.param(
            {"identifier": "a", "scopes": [{"value": "r", "extra": 1}]}, "extra", id="scope-extra"
        ),
        pytest.param({"identifier": "a", "scopes": [scope("r"), scope("r")]}, "twice", id="dup"),
        pytest.param({"identifier": "a", "scopes": [scope("openid")]}, "OpenID", id="openid"),
        pytest.param({"identifier": "a", "signing_alg": "HS256"}, "signing_alg", id="hs256"),
        pytest.param({"identifier": "a", "signing_alg": "none"}, "signing_alg", id="alg-none"),
        pytest.param({"identifier": "a", "signing_alg": 256}, "signing_alg", id="alg-number"),
        pytest.param({"identifier": "a", "token_lifetime": "3600"}, "token_lifetime", id="tl-s"),
        pytest.param({"identifier": "a", "token_lifetime": True}, "token_lifetime", id="tl-bool"),
        pytest.param({"identifier": "a", "token_lifetime": 1.5}, "token_lifetime", id="tl-frac"),
        pytest.param({"identifier": "a", "token_lifetime": 10}, "token_lifetime", id="tl-short"),
        pytest.param({"identifier": "a", "token_lifetime": 10**12}, "token_lifetime", id="tl-long"),
        pytest.param(
            {"identifier": "a", "allow_offline_access": "true"}, "allow_offline", id="offline"
        ),
        pytest.param({"identifier": "a", "signing_secret": "s"}, "signing_secret", id="unknown"),
    ],
)
async def test_bad_bodies_are_400_and_create_nothing(
    env: Env, body: dict[str, Any], needle: str
) -> None:
    response = await env.call("POST", "/api/v2/resource-servers", body=body)
    error = await expect_management_error(response, 400, "invalid_body")
    assert needle in error["message"], error
    assert await env.count() == 1  # only the Management API


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("{", "application/json"),
        ("[]", "application/json"),
        ("null", "application/json"),
        ('{"identifier": "a"}', "text/plain"),
    ],
)
async def test_unreadable_bodies_are_400(env: Env, raw: str, content_type: str) -> None:
    response = await env.call(
        "POST", "/api/v2/resource-servers", raw=raw, content_type=content_type
    )
    await expect_management_error(response, 400, "invalid_body")
    assert await env.count() == 1


async def test_delete_removes_the_api_and_its_client_grants(env: Env) -> None:
    api = await env.create(SEED_API)
    grants = env.db[Collections.CLIENT_GRANTS]
    tenant = env.tenant
    await grants.insert_one(
        {
            "tenant_id": tenant.tenant_id,
            "client_id": tenant.client_id,
            "audience": "appointments:api",
            "scope": ["appointments"],
        }
    )
    # The grant works: a client_credentials token for the new API.
    token_request = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "audience": "appointments:api",
    }
    issued = await env.http.post("/oauth/token", data=token_request, headers={"Host": DOMAIN})
    assert issued.status == 200, await issued.text()
    assert (await issued.json())["scope"] == "appointments"

    response = await env.call("DELETE", f"/api/v2/resource-servers/{api['id']}")
    assert response.status == 204 and await response.read() == b""
    for method in ("GET", "DELETE"):
        response = await env.call(method, f"/api/v2/resource-servers/{api['id']}")
        await expect_management_error(response, 404, "inexistent_resource_server")
    assert await grants.count_documents({"audience": "appointments:api"}) == 0
    # The Management API's own grant is untouched.
    assert await grants.count_documents({"audience": MANAGEMENT_API}) == 1
    refused = await env.http.post("/oauth/token", data=token_request, headers={"Host": DOMAIN})
    assert refused.status == 403

    # The identifier is free again.
    await env.create(SEED_API)


async def test_unknown_ids_are_404(env: Env) -> None:
    for key in ("000000000000000000000000", "no-such-api", quote("https://x.example/", safe="")):
        for method in ("GET", "DELETE"):
            response = await env.call(method, f"/api/v2/resource-servers/{key}")
            await expect_management_error(response, 404, "inexistent_resource_server")


def scopes_without(name: str) -> tuple[str, ...]:
    return tuple(s for s in MANAGEMENT_SCOPES if s != name)


@pytest.mark.parametrize(
    ("method", "path", "required"),
    [
        ("POST", "/api/v2/resource-servers", "create:resource_servers"),
        ("GET", "/api/v2/resource-servers", "read:resource_servers"),
        ("GET", "/api/v2/resource-servers/000000000000000000000000", "read:resource_servers"),
        ("DELETE", "/api/v2/resource-servers/000000000000000000000000", "delete:resource_servers"),
    ],
)
async def test_token_and_scope_are_required(
    env: Env, method: str, path: str, required: str
) -> None:
    body = SEED_API if method == "POST" else None
    response = await env.call(method, path, body=body, token="")
    await expect_management_error(response, 401, "invalid_token")
    narrow = await management_token(
        env.settings, env.tenant.tenant_id, ISSUER, scopes_without(required)
    )
    response = await env.call(method, path, body=body, token=narrow)
    error = await expect_management_error(response, 403, "insufficient_scope")
    assert required in error["message"]
    assert await env.count() == 1


# --- find_resource_server: what /authorize calls ----------------------------------------------


async def test_find_resource_server(env: Env) -> None:
    created = await env.create({**SEED_API, "allow_offline_access": True})
    tenant_id = env.tenant.tenant_id
    api = await find_resource_server(env.db, tenant_id, "appointments:api")
    assert api == ResourceServer(
        id=created["id"],
        identifier="appointments:api",
        name="Appointments API",
        scopes={
            "appointments": "Read and manage your appointments",
            "contacts": "Read your contacts",
        },
        signing_alg="RS256",
        allow_offline_access=True,
        token_lifetime=None,
    )
    assert list(api.scopes) == ["appointments", "contacts"]  # definition order
    assert await find_resource_server(env.db, tenant_id, "APPOINTMENTS:API") is None  # exact
    assert await find_resource_server(env.db, "ten_other", "appointments:api") is None
    # The Management API's internal key is not an audience.
    assert await find_resource_server(env.db, tenant_id, MANAGEMENT_API) is None
    assert await find_resource_server(env.db, tenant_id, "\ud800") is None  # no BSON error

    # A hand-stored API with plain-string scopes (the bootstrap's shape) reads the same way.
    await env.db[Collections.RESOURCE_SERVERS].insert_one(
        {"tenant_id": tenant_id, "identifier": "legacy", "scopes": ["a", "b", 3]}
    )
    legacy = await find_resource_server(env.db, tenant_id, "legacy")
    assert legacy is not None and legacy.scopes == {"a": "", "b": ""}
    assert legacy.name == "legacy" and legacy.token_lifetime is None and not legacy.is_system
