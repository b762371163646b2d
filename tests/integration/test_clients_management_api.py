"""The tenant owner's /api/v2/clients: list, filter, page, read, update, delete."""

from __future__ import annotations

from typing import Any

from oidc_common.mongo import Collections, open_client
from tests.support.registration import HOST, ISSUER, Dcr
from tests.support.tokens import management_token

BODY = {"client_name": "Tool", "redirect_uris": ["https://tool.example/cb"]}


async def _api(
    dcr: Dcr, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = await dcr.registration.request(
        method, path, json=body, headers=headers or dcr.management_headers
    )
    text = await response.text()
    return response.status, (await response.json()) if text else None


async def test_list_filter_and_paginate(dcr: Dcr) -> None:
    registered = [(await dcr.register(BODY))[1]["client_id"] for _ in range(3)]
    status, clients = await _api(dcr, "GET", "/api/v2/clients")
    assert status == 200
    ids = {c["client_id"] for c in clients}
    assert set(registered) <= ids and len(ids) == 4  # plus the management client
    status, third_party = await _api(dcr, "GET", "/api/v2/clients?is_first_party=false")
    assert {c["client_id"] for c in third_party} == set(registered)
    assert all(c["dynamically_registered"] for c in third_party)
    status, first_party = await _api(dcr, "GET", "/api/v2/clients?is_first_party=true")
    assert len(first_party) == 1 and first_party[0]["app_type"] == "non_interactive"
    status, page = await _api(dcr, "GET", "/api/v2/clients?per_page=2&page=1&include_totals=true")
    assert status == 200
    assert page["total"] == 4 and page["start"] == 2 and page["length"] == 2
    for bad in ("per_page=1000", "page=-1", "is_first_party=maybe", "include_totals=1"):
        status, body = await _api(dcr, "GET", f"/api/v2/clients?{bad}")
        assert status == 400 and body["errorCode"] == "invalid_query_string", bad


async def test_read_update_delete_one_client(dcr: Dcr) -> None:
    client_id = (await dcr.register(BODY))[1]["client_id"]
    status, view = await _api(dcr, "GET", f"/api/v2/clients/{client_id}")
    assert status == 200 and view["name"] == "Tool" and view["is_first_party"] is False
    assert view["callbacks"] == BODY["redirect_uris"]
    assert "client_secret_hash" not in view and "registration_access_token_hash" not in view

    status, view = await _api(
        dcr,
        "PATCH",
        f"/api/v2/clients/{client_id}",
        {"client_name": "Tool (approved)", "is_first_party": True},
    )
    assert status == 200, view
    assert view["name"] == "Tool (approved)" and view["is_first_party"] is True
    assert view["callbacks"] == BODY["redirect_uris"]  # untouched fields kept

    for bad, needle in [
        ({"redirect_uris": ["https://tool.example/cb#x"]}, "redirect_uris"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"is_first_party": "yes"}, "is_first_party"),
        ({}, "non-empty"),
        ([], "non-empty"),
    ]:
        status, body = await _api(dcr, "PATCH", f"/api/v2/clients/{client_id}", bad)
        assert status == 400 and needle in body["message"], (bad, body)

    status, _ = await _api(dcr, "DELETE", f"/api/v2/clients/{client_id}")
    assert status == 204
    status, body = await _api(dcr, "GET", f"/api/v2/clients/{client_id}")
    assert status == 404 and body["errorCode"] == "inexistent_client"
    assert (await _api(dcr, "DELETE", f"/api/v2/clients/{client_id}"))[0] == 404


async def test_scopes_are_enforced_per_route(dcr: Dcr) -> None:
    client_id = (await dcr.register(BODY))[1]["client_id"]
    read_only = await management_token(
        dcr.settings, dcr.tenant_id, ISSUER, scopes=("read:clients",)
    )
    headers = {"Host": HOST, "Authorization": f"Bearer {read_only}"}
    assert (await _api(dcr, "GET", "/api/v2/clients", headers=headers))[0] == 200
    status, body = await _api(
        dcr, "PATCH", f"/api/v2/clients/{client_id}", {"client_name": "x"}, headers=headers
    )
    assert status == 403 and body["errorCode"] == "insufficient_scope"
    status, _ = await _api(dcr, "DELETE", f"/api/v2/clients/{client_id}", headers=headers)
    assert status == 403
    status, _ = await _api(dcr, "GET", "/api/v2/clients", headers={"Host": HOST})
    assert status == 401


async def test_auth_method_changes_keep_credentials_consistent(dcr: Dcr) -> None:
    public_id = (await dcr.register({**BODY, "token_endpoint_auth_method": "none"}))[1]["client_id"]
    status, body = await _api(
        dcr,
        "PATCH",
        f"/api/v2/clients/{public_id}",
        {"token_endpoint_auth_method": "client_secret_basic"},
    )
    assert status == 400 and "RFC 7592" in body["message"]
    confidential_id = (await dcr.register(BODY))[1]["client_id"]
    status, view = await _api(
        dcr, "PATCH", f"/api/v2/clients/{confidential_id}", {"token_endpoint_auth_method": "none"}
    )
    assert status == 200 and view["app_type"] == "spa"
    mongo = open_client(dcr.settings.mongodb_url)
    try:
        stored = await mongo[dcr.settings.mongodb_database][Collections.CLIENTS].find_one(
            {"_id": confidential_id}
        )
    finally:
        await mongo.close()
    assert stored is not None and stored["client_secret_hash"] is None
