"""GET/PATCH /api/v2/tenants/settings: shape, partial merge, versioning, validation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.support.settings_api import URL, SettingsApi, settings_api
from tests.support.tenants import bootstrap_tenant

HOST = "acme.example"


@pytest.fixture
async def api(settings_for: SettingsFactory) -> AsyncIterator[SettingsApi]:
    settings = settings_for("tenant-settings")
    tenant = await bootstrap_tenant(settings, HOST)
    async with settings_api(settings, HOST, tenant.tenant_id) as api:
        yield api


async def test_defaults_in_auth0_shape(api: SettingsApi) -> None:
    body = await api.get()
    assert body["flags"] == {"enable_dynamic_client_registration": False}
    assert body["friendly_name"] == HOST
    for field in ("picture_url", "support_email", "support_url", "default_audience"):
        assert field in body
    dcr = body["dynamic_client_registration"]
    assert dcr["rate_limit"] == {"requests": 20, "window_seconds": 60, "by_software_id": False}
    assert dcr["require_pkce"] is True and dcr["client_self_management"] is True
    # Agents and MCP (issue 12): resources by URL prefix and metadata documents are off.
    assert dcr["resource_indicators"] == {"allowed_url_prefixes": []}
    assert dcr["client_id_metadata_documents"]["enabled"] is False
    assert body["version"] == 1


async def test_patch_flag_then_get_and_version_increments(api: SettingsApi) -> None:
    status, body = await api.patch({"flags": {"enable_dynamic_client_registration": True}})
    assert status == 200
    assert body["flags"]["enable_dynamic_client_registration"] is True
    assert body["version"] == 2
    assert (await api.get())["flags"]["enable_dynamic_client_registration"] is True
    status, body = await api.patch({"flags": {"enable_dynamic_client_registration": False}})
    assert status == 200 and body["version"] == 3
    # The same value again is not a change: no new version, nothing to publish.
    status, body = await api.patch({"flags": {"enable_dynamic_client_registration": False}})
    assert status == 200 and body["version"] == 3


async def test_partial_merge_changes_only_the_fields_given(api: SettingsApi) -> None:
    before = await api.get()
    status, after = await api.patch(
        {
            "support_email": "help@acme.example",
            "dynamic_client_registration": {"rate_limit": {"requests": 5}, "max_clients": 10},
        }
    )
    assert status == 200
    assert after["support_email"] == "help@acme.example"
    dcr = after["dynamic_client_registration"]
    assert dcr["rate_limit"] == {"requests": 5, "window_seconds": 60, "by_software_id": False}
    assert dcr["max_clients"] == 10
    assert (
        dcr["idle_client_ttl_days"] == before["dynamic_client_registration"]["idle_client_ttl_days"]
    )
    assert after["friendly_name"] == before["friendly_name"]
    assert after["flags"] == before["flags"]
    status, after = await api.patch({"support_email": None})
    assert status == 200 and after["support_email"] is None


def _prefixes(*prefixes: str) -> dict[str, Any]:
    return {
        "dynamic_client_registration": {
            "resource_indicators": {"allowed_url_prefixes": list(prefixes)}
        }
    }


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("array body", [], "JSON object"),
    ("string body", "flags", "JSON object"),
    ("null body", None, "JSON object"),
    ("unknown top-level field", {"favourite_colour": "blue"}, "favourite_colour"),
    ("unknown flag", {"flags": {"enable_everything": True}}, "flags.enable_everything"),
    (
        "flag not boolean",
        {"flags": {"enable_dynamic_client_registration": "yes"}},
        "flags.enable_dynamic_client_registration",
    ),
    (
        "flag as number",
        {"flags": {"enable_dynamic_client_registration": 1}},
        "flags.enable_dynamic_client_registration",
    ),
    ("flags not an object", {"flags": True}, "flags"),
    ("friendly_name empty", {"friendly_name": ""}, "friendly_name"),
    ("friendly_name number", {"friendly_name": 7}, "friendly_name"),
    ("friendly_name too long", {"friendly_name": "x" * 256}, "friendly_name"),
    ("friendly_name control char", {"friendly_name": "a\u0000b"}, "friendly_name"),
    ("friendly_name zero-width space", {"friendly_name": "Ac\u200bme"}, "friendly_name"),
    ("picture_url not a url", {"picture_url": "not a url"}, "picture_url"),
    ("picture_url javascript", {"picture_url": "javascript:alert(1)"}, "picture_url"),
    ("support_email invalid", {"support_email": "nobody"}, "support_email"),
    ("support_url ftp", {"support_url": "ftp://acme.example/"}, "support_url"),
    (
        "rate limit zero",
        {"dynamic_client_registration": {"rate_limit": {"requests": 0}}},
        "dynamic_client_registration.rate_limit.requests",
    ),
    (
        "rate window negative",
        {"dynamic_client_registration": {"rate_limit": {"window_seconds": -1}}},
        "dynamic_client_registration.rate_limit.window_seconds",
    ),
    (
        "rate limit float",
        {"dynamic_client_registration": {"rate_limit": {"requests": 1.5}}},
        "dynamic_client_registration.rate_limit.requests",
    ),
    (
        "rate limit boolean",
        {"dynamic_client_registration": {"rate_limit": {"requests": True}}},
        "dynamic_client_registration.rate_limit.requests",
    ),
    (
        "unknown rate field",
        {"dynamic_client_registration": {"rate_limit": {"burst": 3}}},
        "dynamic_client_registration.rate_limit.burst",
    ),
    (
        "max_clients huge",
        {"dynamic_client_registration": {"max_clients": 10**12}},
        "dynamic_client_registration.max_clients",
    ),
    (
        "idle ttl zero",
        {"dynamic_client_registration": {"idle_client_ttl_days": 0}},
        "dynamic_client_registration.idle_client_ttl_days",
    ),
    (
        "auth methods empty",
        {"dynamic_client_registration": {"allowed_token_endpoint_auth_methods": []}},
        "dynamic_client_registration.allowed_token_endpoint_auth_methods",
    ),
    (
        "auth method unknown",
        {
            "dynamic_client_registration": {
                "allowed_token_endpoint_auth_methods": ["client_secret_jwt"]
            }
        },
        "dynamic_client_registration.allowed_token_endpoint_auth_methods[0]",
    ),
    (
        "auth methods duplicate",
        {"dynamic_client_registration": {"allowed_token_endpoint_auth_methods": ["none", "none"]}},
        "dynamic_client_registration.allowed_token_endpoint_auth_methods",
    ),
    (
        "require_pkce string",
        {"dynamic_client_registration": {"require_pkce": "false"}},
        "dynamic_client_registration.require_pkce",
    ),
    ("policy not an object", {"dynamic_client_registration": []}, "dynamic_client_registration"),
    ("version is read-only", {"version": 99}, "version"),
    ("picture_url broken IPv6", {"picture_url": "http://[x"}, "picture_url"),
    ("support_url bad port", {"support_url": "https://acme.example:99999/"}, "support_url"),
    ("friendly_name lone surrogate", {"friendly_name": "\ud800"}, "friendly_name"),
    # Issue 21: the tenant's own origin holds its Management API; never a prefix resource.
    (
        "resource prefix on the tenant's own origin",
        _prefixes("https://mcp.example.com/", "https://acme.example/"),
        "dynamic_client_registration.resource_indicators.allowed_url_prefixes[1]: must not be on",
    ),
    (
        "resource prefix on the tenant's host, another port and path",
        _prefixes("https://ACME.example.:8443/api/"),
        "allowed_url_prefixes[0]: must not be on the tenant's own origin",
    ),
]


@pytest.mark.parametrize(("case", "body", "names"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_bodies_are_400_naming_the_field(
    api: SettingsApi, case: str, body: Any, names: str
) -> None:
    status, answer = await api.patch(body)
    assert status == 400, answer
    assert answer["statusCode"] == 400 and answer["error"] == "Bad Request"
    assert answer["errorCode"] == "invalid_body"
    assert names in answer["message"]
    # Nothing was written.
    assert (await api.get())["version"] == 1


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b""),
        ("application/json", b"   "),
        ("application/json", b"{not json"),
        ("application/json", b'{"friendly_name": NaN}'),
        ("application/json", b"\xff\xfe"),
        ("text/plain", b'{"friendly_name":"x"}'),
        ("application/x-www-form-urlencoded", b"friendly_name=x"),
    ],
)
async def test_empty_or_non_json_bodies_are_400(
    api: SettingsApi, content_type: str, raw: bytes
) -> None:
    response = await api.client.patch(
        URL, data=raw, headers={**api.headers, "Content-Type": content_type}
    )
    assert response.status == 400
    body = await response.json()
    assert body["errorCode"] == "invalid_body"
    assert (await api.get())["version"] == 1


async def test_oversized_body_is_413_in_management_format(api: SettingsApi) -> None:
    response = await api.client.patch(
        URL,
        data=b'{"friendly_name":"' + b"x" * 100_000 + b'"}',
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["statusCode"] == 413


async def test_accepted_change_is_flagged_for_publishing_until_confirmed(api: SettingsApi) -> None:
    status, _ = await api.patch({"friendly_name": "Acme"})
    assert status == 200
    doc = await api.stored()
    assert doc is not None and doc["version"] == 2
    # The broker is up in this test, so the event was confirmed and the outbox flag cleared.
    assert doc["pending_publish"] is False and doc["published_version"] == 2


async def test_concurrent_patches_are_serialised_and_none_is_lost(api: SettingsApi) -> None:
    names = [f"Name {i}" for i in range(12)]
    results = await asyncio.gather(*(api.patch({"friendly_name": name}) for name in names))
    accepted = [body["version"] for status, body in results if status == 200]
    assert all(status in (200, 409) for status, _ in results)
    # Every accepted change got its own version: none overwrote another unseen.
    assert len(set(accepted)) == len(accepted)
    assert (await api.get())["version"] == 1 + len(accepted)
