"""`/api/v2/users` over real HTTP against real MongoDB: creating, reading, searching and
deleting users in Auth0's shape, every malformed request answered 400 (never 500), and the
password never in an answer; plus `authenticate_user`, the login page's check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authorize_service.resources import PASSWORDS, USERS
from authorize_service.users.login import authenticate_user
from authorize_service.users.passwords import Passwords
from authorize_service.users.repository import Users
from oidc_common.management_api import MANAGEMENT_SCOPES
from oidc_common.mongo import Collections
from tests.conftest import SettingsFactory
from tests.support.authorize import ManagementEnv, expect_management_error, management_env
from tests.support.tenants import bootstrap_tenant
from tests.support.tokens import management_token

DOMAIN = "acme.example"
ISSUER = f"http://{DOMAIN}/"
CONNECTION = "Username-Password-Authentication"
PASSWORD = "correct horse battery"
USER_FIELDS = {
    "user_id",
    "email",
    "email_verified",
    "name",
    "created_at",
    "updated_at",
    "identities",
}


class Env(ManagementEnv):
    async def create(self, **overrides: Any) -> dict[str, Any]:
        body = {"email": "jane@example.com", "password": PASSWORD, "connection": CONNECTION}
        body.update(overrides)
        response = await self.call("POST", "/api/v2/users", body=body)
        created = await response.json()
        assert response.status == 201, created
        return dict(created)

    async def stored_users(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.db[Collections.USERS].find({})]


@pytest.fixture
async def env(settings_for: SettingsFactory) -> AsyncIterator[Env]:
    async with management_env(settings_for("authorize"), DOMAIN, Env) as environment:
        yield environment


def assert_no_secret(text: str) -> None:
    assert PASSWORD not in text
    # No hash, and no member named password-anything (the connection's name says "Password").
    assert "argon2" not in text and '"password' not in text.lower()


async def test_create_returns_the_user_in_auth0_shape_without_the_password(env: Env) -> None:
    response = await env.call(
        "POST",
        "/api/v2/users",
        body={
            "email": "Jane.Doe@Example.COM",
            "password": PASSWORD,
            "connection": CONNECTION,
            "email_verified": True,
            "name": "Jane Doe",
        },
    )
    text = await response.text()
    assert response.status == 201, text
    assert_no_secret(text)
    user = json.loads(text)
    assert set(user) == USER_FIELDS
    assert user["user_id"].startswith("auth0|") and len(user["user_id"]) == len("auth0|") + 24
    assert user["email"] == "jane.doe@example.com"  # stored (and shown) lowercased
    assert user["email_verified"] is True and user["name"] == "Jane Doe"
    assert user["created_at"].endswith("Z") and user["updated_at"] == user["created_at"]
    assert user["identities"] == [
        {
            "connection": CONNECTION,
            "provider": "auth0",
            "user_id": user["user_id"].removeprefix("auth0|"),
            "isSocial": False,
        }
    ]

    # Stored: an Argon2id hash with the configured (test) parameters, never the password.
    [doc] = await env.stored_users()
    assert doc["_id"] == user["user_id"] and doc["tenant_id"] == env.tenant.tenant_id
    assert doc["password_hash"].startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert PASSWORD not in json.dumps(doc, default=str).replace(doc["password_hash"], "")

    # Read back, alone and in a list: the same object, still without secrets.
    one = await env.call("GET", f"/api/v2/users/{user['user_id']}")
    assert one.status == 200 and await one.json() == user
    listed = await env.call("GET", "/api/v2/users")
    text = await listed.text()
    assert listed.status == 200 and json.loads(text) == [user]
    assert_no_secret(text)


async def test_defaults_and_a_user_id_with_an_encoded_bar(env: Env) -> None:
    user = await env.create()
    assert user["email_verified"] is False and user["name"] is None
    response = await env.call("GET", "/api/v2/users/" + user["user_id"].replace("|", "%7C"))
    assert response.status == 200 and (await response.json())["user_id"] == user["user_id"]


async def test_duplicate_email_in_another_case_is_a_conflict(env: Env) -> None:
    await env.create(email="jane@example.com")
    response = await env.call(
        "POST",
        "/api/v2/users",
        body={
            "email": "JANE@Example.com",
            "password": "another password",
            "connection": CONNECTION,
        },
    )
    body = await expect_management_error(response, 409, "auth0_idp_error")
    assert body["message"] == "The user already exists."
    assert len(await env.stored_users()) == 1


VALID = {"email": "jane@example.com", "password": PASSWORD, "connection": CONNECTION}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != name}


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        pytest.param(without("email"), "invalid_body", "email", id="missing-email"),
        pytest.param(without("password"), "invalid_body", "password", id="missing-password"),
        pytest.param(without("connection"), "invalid_body", "connection", id="missing-connection"),
        pytest.param({**VALID, "email": 5}, "invalid_body", "email", id="email-number"),
        pytest.param({**VALID, "email": None}, "invalid_body", "email", id="email-null"),
        pytest.param({**VALID, "password": 12345678}, "invalid_body", "password", id="pw-number"),
        pytest.param({**VALID, "password": ["x"]}, "invalid_body", "password", id="pw-array"),
        pytest.param({**VALID, "connection": True}, "invalid_body", "connection", id="conn-bool"),
        pytest.param({**VALID, "email_verified": "yes"}, "invalid_body", "email_verified", id="ev"),
        pytest.param({**VALID, "name": 7}, "invalid_body", "name", id="name-number"),
        pytest.param({**VALID, "name": ""}, "invalid_body", "name", id="name-empty"),
        pytest.param({**VALID, "name": "x" * 301}, "invalid_body", "name", id="name-long"),
        pytest.param({**VALID, "name": "a\nb"}, "invalid_body", "name", id="name-control"),
        pytest.param(
            {**VALID, "password_hash": "x"}, "invalid_body", "password_hash", id="unknown"
        ),
        pytest.param({**VALID, "email": "not-an-email"}, "invalid_body", "email", id="bad-email"),
        pytest.param({**VALID, "email": "a b@example.com"}, "invalid_body", "email", id="space"),
        pytest.param({**VALID, "email": "\ud800@example.com"}, "invalid_body", "email", id="surr"),
        pytest.param(
            {**VALID, "connection": "google-oauth2"},
            "inexistent_connection",
            "connection",
            id="wrong-connection",
        ),
        pytest.param({**VALID, "password": "short7!"}, "invalid_password", "weak", id="7-chars"),
        pytest.param({**VALID, "password": ""}, "invalid_password", "weak", id="empty-pw"),
        pytest.param(
            {**VALID, "password": "JANE@EXAMPLE.COM"},
            "invalid_password",
            "user information",
            id="password-is-the-email",
        ),
        pytest.param(
            {**VALID, "password": "x" * 1025}, "invalid_password", "long", id="password-too-long"
        ),
        pytest.param({**VALID, "password": "\ud800" * 9}, "invalid_body", "password", id="pw-surr"),
    ],
)
async def test_bad_bodies_are_400_and_create_nothing(
    env: Env, body: dict[str, Any], code: str, needle: str
) -> None:
    response = await env.call("POST", "/api/v2/users", body=body)
    error = await expect_management_error(response, 400, code)
    assert needle.lower() in error["message"].lower(), error
    assert PASSWORD not in error["message"]
    assert await env.stored_users() == []


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"a string"', "application/json"),
        ("", "application/json"),
        ('{"email": NaN}', "application/json"),
        (json.dumps(VALID), "text/plain"),
        ("email=jane%40example.com", "application/x-www-form-urlencoded"),
    ],
)
async def test_unreadable_bodies_are_400(env: Env, raw: str, content_type: str) -> None:
    response = await env.call("POST", "/api/v2/users", raw=raw, content_type=content_type)
    await expect_management_error(response, 400, "invalid_body")
    assert await env.stored_users() == []


async def test_eight_characters_is_enough(env: Env) -> None:
    user = await env.create(password="8charsOK")
    assert user["email"] == "jane@example.com"


async def test_listing_pages_and_totals(env: Env) -> None:
    emails = [f"user{i}@example.com" for i in range(5)]
    for email in emails:
        await env.create(email=email)
    first = await env.call("GET", "/api/v2/users", params={"per_page": "2"})
    assert [u["email"] for u in await first.json()] == emails[:2]  # oldest first
    last = await env.call(
        "GET", "/api/v2/users", params={"per_page": "2", "page": "2", "include_totals": "true"}
    )
    body = await last.json()
    assert last.status == 200
    assert {k: v for k, v in body.items() if k != "users"} == {
        "start": 4,
        "limit": 2,
        "length": 1,
        "total": 5,
    }
    assert [u["email"] for u in body["users"]] == emails[4:]
    beyond = await env.call("GET", "/api/v2/users", params={"page": "9", "per_page": "2"})
    assert beyond.status == 200 and await beyond.json() == []


async def test_email_and_q_lookups_are_case_insensitive(env: Env) -> None:
    jane = await env.create(email="jane@example.com")
    await env.create(email="john@example.com")
    for params in (
        {"email": "JANE@example.com"},
        {"q": 'email:"Jane@Example.com"'},
        {"q": "email:jane@EXAMPLE.com"},
        {"q": f'user_id:"{jane["user_id"]}"'},
        {"q": f"user_id:{jane['user_id']}", "search_engine": "v3"},
        {"q": 'email:"jane@example.com"', "email": "jane@example.com"},
    ):
        response = await env.call("GET", "/api/v2/users", params=params)
        assert response.status == 200, await response.text()
        assert [u["user_id"] for u in await response.json()] == [jane["user_id"]], params
    for params in (
        {"email": "nobody@example.com"},
        {"email": "not an address"},
        {"q": 'email:"nobody@example.com"'},
        {"q": 'email:"jane@example.com"', "email": "john@example.com"},
    ):
        response = await env.call("GET", "/api/v2/users", params=params)
        assert response.status == 200 and await response.json() == [], params


@pytest.mark.parametrize(
    "params",
    [
        {"q": 'name:"Jane"'},
        {"q": "jane@example.com"},
        {"q": 'email:"jane@example.com" AND name:"x"'},
        {"q": 'email:"jane@example.com" OR email:"john@example.com"'},
        {"q": "email:*@example.com"},
        {"q": "email:jane*"},
        {"q": "email:[a TO z]"},
        {"q": 'email:"unterminated'},
        {"q": 'email:""'},
        {"q": "x" * 601},
        {"email": ""},
        {"page": "-1"},
        {"page": "abc"},
        {"per_page": "0"},
        {"per_page": "101"},
        {"per_page": "²"},
        {"include_totals": "yes"},
        {"page": "10", "per_page": "100"},  # beyond the first 1000 results, as in Auth0
    ],
)
async def test_bad_list_queries_are_400(env: Env, params: dict[str, str]) -> None:
    response = await env.call("GET", "/api/v2/users", params=params)
    await expect_management_error(response, 400, "invalid_query_string")


async def test_unknown_ids_and_delete(env: Env) -> None:
    user = await env.create()
    for unknown in ("auth0|000000000000000000000000", "nobody", "auth0%7C"):
        response = await env.call("GET", f"/api/v2/users/{unknown}")
        await expect_management_error(response, 404, "inexistent_user")
        response = await env.call("DELETE", f"/api/v2/users/{unknown}")
        await expect_management_error(response, 404, "inexistent_user")

    # The user's remembered consents go with them; another user's stay.
    consents = env.db[Collections.GRANTS]
    tenant_id = env.tenant.tenant_id
    await consents.insert_one(
        {"tenant_id": tenant_id, "user_id": user["user_id"], "client_id": "c"}
    )
    await consents.insert_one({"tenant_id": tenant_id, "user_id": "auth0|other", "client_id": "c"})

    response = await env.call("DELETE", f"/api/v2/users/{user['user_id']}")
    assert response.status == 204 and await response.read() == b""
    response = await env.call("GET", f"/api/v2/users/{user['user_id']}")
    await expect_management_error(response, 404, "inexistent_user")
    response = await env.call("DELETE", f"/api/v2/users/{user['user_id']}")
    await expect_management_error(response, 404, "inexistent_user")
    assert await env.stored_users() == []
    assert [doc["user_id"] async for doc in consents.find({})] == ["auth0|other"]

    # The email is free again.
    await env.create()


async def test_users_of_another_tenant_are_invisible(env: Env) -> None:
    other = await bootstrap_tenant(env.settings, "other.example")
    other_token = await management_token(env.settings, other.tenant_id, "http://other.example/")
    theirs = await env.call(
        "POST",
        "/api/v2/users",
        body=VALID,
        token=other_token,
        host="other.example",
    )
    assert theirs.status == 201
    their_id = (await theirs.json())["user_id"]
    # Same email in this tenant: no conflict, a separate account.
    ours = await env.create()
    assert ours["user_id"] != their_id
    for method in ("GET", "DELETE"):
        response = await env.call(method, f"/api/v2/users/{their_id}")
        await expect_management_error(response, 404, "inexistent_user")
    listed = await env.call("GET", "/api/v2/users")
    assert [u["user_id"] for u in await listed.json()] == [ours["user_id"]]
    # This tenant's token does not open the other tenant's API.
    response = await env.call("GET", "/api/v2/users", host="other.example")
    await expect_management_error(response, 401, "invalid_token")


def scopes_without(scope: str) -> tuple[str, ...]:
    return tuple(s for s in MANAGEMENT_SCOPES if s != scope)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/api/v2/users", "create:users"),
        ("GET", "/api/v2/users", "read:users"),
        ("GET", "/api/v2/users/auth0|000000000000000000000000", "read:users"),
        ("DELETE", "/api/v2/users/auth0|000000000000000000000000", "delete:users"),
    ],
)
async def test_token_and_scope_are_required(env: Env, method: str, path: str, scope: str) -> None:
    body = VALID if method == "POST" else None
    response = await env.call(method, path, body=body, token="")
    await expect_management_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = await env.call(method, path, body=body, token="not-a-jwt")
    await expect_management_error(response, 401, "invalid_token")

    narrow = await management_token(
        env.settings, env.tenant.tenant_id, ISSUER, scopes_without(scope)
    )
    response = await env.call(method, path, body=body, token=narrow)
    error = await expect_management_error(response, 403, "insufficient_scope")
    assert scope in error["message"]
    assert await env.stored_users() == []


# --- authenticate_user: what the login page calls -------------------------------------------


async def test_authenticate_user(env: Env) -> None:
    users, hasher = env.app[USERS], env.app[PASSWORDS]
    tenant_id = env.tenant.tenant_id
    created = await env.create(email="jane@example.com", name="Jane")

    user = await authenticate_user(users, hasher, tenant_id, " Jane@EXAMPLE.com ", PASSWORD)
    assert user is not None and user.user_id == created["user_id"] and user.name == "Jane"
    assert PASSWORD not in repr(user) and user.password_hash not in repr(user)

    assert (
        await authenticate_user(users, hasher, tenant_id, "jane@example.com", "wrong!!!1") is None
    )
    assert await authenticate_user(users, hasher, tenant_id, "jane@example.com", "") is None
    assert await authenticate_user(users, hasher, tenant_id, "nobody@example.com", PASSWORD) is None
    assert await authenticate_user(users, hasher, tenant_id, "not an email", PASSWORD) is None
    assert await authenticate_user(users, hasher, "ten_other", "jane@example.com", PASSWORD) is None
    assert await users.get(tenant_id, "auth0|\ud800") is None  # no BSON error


async def test_login_rehashes_when_the_parameters_change(env: Env) -> None:
    users: Users = env.app[USERS]
    tenant_id = env.tenant.tenant_id
    await env.create()
    [before] = await env.stored_users()
    assert "$m=8192,t=1,p=1$" in before["password_hash"]

    # Same parameters: nothing rewritten.
    assert await authenticate_user(users, env.app[PASSWORDS], tenant_id, VALID["email"], PASSWORD)
    [same] = await env.stored_users()
    assert same["password_hash"] == before["password_hash"]

    # A wrong password under new parameters: nothing rewritten either.
    stronger = Passwords(time_cost=2, memory_cost=9216, parallelism=1)
    assert await authenticate_user(users, stronger, tenant_id, VALID["email"], "wrong one") is None
    [unchanged] = await env.stored_users()
    assert unchanged["password_hash"] == before["password_hash"]

    # The right password under new parameters: rehashed, and the new hash works.
    user = await authenticate_user(users, stronger, tenant_id, VALID["email"], PASSWORD)
    assert user is not None
    [after] = await env.stored_users()
    assert after["password_hash"].startswith("$argon2id$v=19$m=9216,t=2,p=1$")
    assert user.password_hash == after["password_hash"]
    assert not stronger.needs_rehash(after["password_hash"])
    assert await authenticate_user(users, stronger, tenant_id, VALID["email"], PASSWORD)
    # And the old parameters still verify it (and would rehash back).
    assert await authenticate_user(users, env.app[PASSWORDS], tenant_id, VALID["email"], PASSWORD)
