"""RFC 7592: read, update (full replacement, token rotation) and delete with the RAT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.support.registration import HOST, Dcr, dcr_stack

BASE = {"client_name": "Agent", "redirect_uris": ["https://agent.example/cb"]}


@pytest.fixture
async def dcr(settings_for: SettingsFactory) -> AsyncIterator[Dcr]:
    async with dcr_stack(settings_for("registration"), settings_for("tenant-settings")) as stack:
        await stack.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {"rate_limit": {"requests": 1000}},
            }
        )
        yield stack


async def _call(
    dcr: Dcr, method: str, client_id: str, token: str | None, body: Any = None
) -> tuple[int, Any, Any]:
    headers = {"Host": HOST}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await dcr.registration.request(
        method, f"/oidc/register/{client_id}", json=body, headers=headers
    )
    text = await response.text()
    return response.status, (await response.json()) if text else None, response.headers


async def _register(dcr: Dcr, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, registered, _ = await dcr.register(body or BASE)
    assert status == 201, registered
    result: dict[str, Any] = registered
    return result


async def test_read_returns_the_registration_and_its_token_but_no_secret(dcr: Dcr) -> None:
    client = await _register(dcr)
    status, body, headers = await _call(
        dcr, "GET", client["client_id"], client["registration_access_token"]
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert body["client_id"] == client["client_id"]
    assert body["redirect_uris"] == BASE["redirect_uris"]
    assert body["registration_client_uri"] == client["registration_client_uri"]
    # RFC 7592 §3: the registration access token is part of every client information
    # response; the secret is stored hashed only and is not repeated.
    assert body["registration_access_token"] == client["registration_access_token"]
    assert "client_secret" not in body


async def test_update_replaces_metadata_and_rotates_the_token(dcr: Dcr) -> None:
    client = await _register(dcr)
    update = {
        "client_id": client["client_id"],
        "client_name": "Agent v2",
        "redirect_uris": ["https://agent.example/cb2"],
        "client_secret": client["client_secret"],
    }
    status, body, _ = await _call(
        dcr, "PUT", client["client_id"], client["registration_access_token"], update
    )
    assert status == 200, body
    assert body["client_name"] == "Agent v2"
    assert body["redirect_uris"] == ["https://agent.example/cb2"]
    new_token = body["registration_access_token"]
    assert new_token and new_token != client["registration_access_token"]
    # The old token stops working at once; the new one works.
    old = await _call(dcr, "GET", client["client_id"], client["registration_access_token"])
    assert old[0] == 401
    assert (await _call(dcr, "GET", client["client_id"], new_token))[0] == 200


async def test_update_field_rules(dcr: Dcr) -> None:
    client = await _register(dcr)
    cid, token = client["client_id"], client["registration_access_token"]
    cases = [
        ({**BASE}, "invalid_client_metadata"),  # client_id missing
        ({**BASE, "client_id": "someone-else"}, "invalid_client_metadata"),
        ({**BASE, "client_id": cid, "registration_access_token": token}, "invalid_client_metadata"),
        ({**BASE, "client_id": cid, "client_id_issued_at": 1}, "invalid_client_metadata"),
        ({**BASE, "client_id": cid, "client_secret": "wrong"}, "invalid_client_metadata"),
        ({"client_id": cid, "redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
    ]
    for body, error in cases:
        status, answer, _ = await _call(dcr, "PUT", cid, token, body)
        assert (status, answer["error"]) == (400, error), (body, answer)
    # Nothing changed, and the token was not rotated by failed updates.
    status, body, _ = await _call(dcr, "GET", cid, token)
    assert status == 200 and body["client_name"] == "Agent"


async def test_public_client_becoming_confidential_gets_a_secret(dcr: Dcr) -> None:
    client = await _register(dcr, {**BASE, "token_endpoint_auth_method": "none"})
    status, body, _ = await _call(
        dcr,
        "PUT",
        client["client_id"],
        client["registration_access_token"],
        {
            **BASE,
            "client_id": client["client_id"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert status == 200, body
    assert body["client_secret"] and body["client_secret_expires_at"] == 0


async def test_delete_then_every_call_is_invalid_token(dcr: Dcr) -> None:
    client = await _register(dcr)
    cid, token = client["client_id"], client["registration_access_token"]
    status, body, _ = await _call(dcr, "DELETE", cid, token)
    assert status == 204 and body is None
    for method in ("GET", "DELETE"):
        status, body, headers = await _call(dcr, method, cid, token)
        assert status == 401 and body["error"] == "invalid_token"
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_bad_tokens_reveal_nothing(dcr: Dcr) -> None:
    first = await _register(dcr)
    second = await _register(dcr)
    answers = [
        await _call(dcr, "GET", first["client_id"], "not-the-token"),
        await _call(dcr, "GET", first["client_id"], second["registration_access_token"]),
        await _call(
            dcr, "GET", "no-such-client-id-0000000000000000", first["registration_access_token"]
        ),
        await _call(dcr, "GET", "no-such-client-id-0000000000000000", "whatever"),
    ]
    bodies = {(status, body["error"], body["error_description"]) for status, body, _ in answers}
    assert bodies == {(401, "invalid_token", "The registration access token is invalid")}
    status, body, headers = await _call(dcr, "GET", first["client_id"], None)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert body["error"] == "invalid_token"


async def test_self_management_can_be_switched_off_by_the_tenant(dcr: Dcr) -> None:
    client = await _register(dcr)
    await dcr.patch_settings({"dynamic_client_registration": {"client_self_management": False}})
    status, body, _ = await _call(
        dcr, "GET", client["client_id"], client["registration_access_token"]
    )
    assert status == 403 and body["error"] == "access_denied"
    status, body, _ = await _call(
        dcr, "DELETE", client["client_id"], client["registration_access_token"]
    )
    assert status == 403


async def test_concurrent_updates_with_one_token_rotate_it_once(dcr: Dcr) -> None:
    client = await _register(dcr)
    cid, token = client["client_id"], client["registration_access_token"]
    body = {**BASE, "client_id": cid}
    results = await asyncio.gather(*(_call(dcr, "PUT", cid, token, body) for _ in range(4)))
    winners = [answer for status, answer, _ in results if status == 200]
    assert len(winners) == 1, [status for status, _, _ in results]
    assert all(status in (200, 401, 503) for status, _, _ in results)
    new_token = winners[0]["registration_access_token"]
    assert (await _call(dcr, "GET", cid, new_token))[0] == 200
    assert (await _call(dcr, "GET", cid, token))[0] == 401
