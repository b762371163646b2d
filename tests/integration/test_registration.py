"""POST /oidc/register: the gate, the happy paths, invalid metadata, idempotency, CORS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from oidc_common.credentials import verify_secret
from oidc_common.mongo import Collections, open_client
from tests.cases.invalid_registrations import INVALID_REGISTRATIONS
from tests.conftest import SettingsFactory
from tests.support.registration import HOST, Dcr, dcr_stack

SEED_EXAMPLE = {
    "client_name": "My Dynamic Application",
    "redirect_uris": [
        "https://application.example.com/callback",
        "https://application.example.com/callback2",
    ],
}


@pytest.fixture
async def dcr(settings_for: SettingsFactory) -> AsyncIterator[Dcr]:
    async with dcr_stack(settings_for("registration"), settings_for("tenant-settings")) as stack:
        await stack.patch_settings(
            {"dynamic_client_registration": {"rate_limit": {"requests": 10_000}}}
        )
        yield stack


async def _stored(dcr: Dcr, client_id: str) -> dict[str, Any] | None:
    client = open_client(dcr.settings.mongodb_url)
    try:
        return await client[dcr.settings.mongodb_database][Collections.CLIENTS].find_one(
            {"_id": client_id}
        )
    finally:
        await client.close()


async def test_disabled_by_default_then_open_then_closed(dcr: Dcr) -> None:
    status, body, headers = await dcr.register(SEED_EXAMPLE)
    assert status == 403
    assert body == {
        "error": "access_denied",
        "error_description": "Dynamic client registration is disabled for this tenant",
    }
    await dcr.set_registration(True)
    status, body, headers = await dcr.register(SEED_EXAMPLE)
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    await dcr.set_registration(False)
    status, body, _ = await dcr.register(SEED_EXAMPLE)
    assert status == 403 and body["error"] == "access_denied"


async def test_seed_example_registers_a_third_party_confidential_client(dcr: Dcr) -> None:
    await dcr.set_registration(True)
    status, body, headers = await dcr.register(SEED_EXAMPLE)
    assert status == 201, body
    assert headers["Pragma"] == "no-cache"
    assert body["client_name"] == "My Dynamic Application"
    assert body["redirect_uris"] == SEED_EXAMPLE["redirect_uris"]
    assert len(body["client_id"]) == 32 and body["client_id"].isalnum()
    assert isinstance(body["client_id_issued_at"], int)
    assert len(body["client_secret"]) >= 43
    assert body["client_secret_expires_at"] == 0
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["application_type"] == "web"
    assert body["id_token_signed_response_alg"] == "RS256"
    assert body["is_first_party"] is False
    assert body["registration_client_uri"] == f"http://{HOST}/oidc/register/{body['client_id']}"
    assert body["registration_access_token"]
    stored = await _stored(dcr, body["client_id"])
    assert stored is not None
    assert stored["is_first_party"] is False and stored["dynamic"] is True
    dumped = json.dumps(stored, default=str)
    assert body["client_secret"] not in dumped
    assert body["registration_access_token"] not in dumped
    assert verify_secret(body["client_secret"], stored["client_secret_hash"])
    assert verify_secret(
        body["registration_access_token"], stored["registration_access_token_hash"]
    )


async def test_public_client_gets_no_secret(dcr: Dcr) -> None:
    await dcr.set_registration(True)
    status, body, _ = await dcr.register({**SEED_EXAMPLE, "token_endpoint_auth_method": "none"})
    assert status == 201, body
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"
    stored = await _stored(dcr, body["client_id"])
    assert stored is not None and stored["client_secret_hash"] is None
    assert stored["app_type"] == "spa"


async def test_unknown_metadata_is_ignored_not_echoed(dcr: Dcr) -> None:
    await dcr.set_registration(True)
    status, body, _ = await dcr.register(
        {**SEED_EXAMPLE, "is_first_party": True, "x_custom": "y", "client_id": "mine"}
    )
    assert status == 201
    assert "x_custom" not in body and body["client_id"] != "mine"
    assert body["is_first_party"] is False


async def test_policy_narrows_auth_methods(dcr: Dcr) -> None:
    await dcr.set_registration(True)
    await dcr.patch_settings(
        {"dynamic_client_registration": {"allowed_token_endpoint_auth_methods": ["none"]}}
    )
    status, body, _ = await dcr.register(
        {**SEED_EXAMPLE, "token_endpoint_auth_method": "client_secret_post"}
    )
    assert status == 400 and body["error"] == "invalid_client_metadata"
    assert "token_endpoint_auth_method" in body["error_description"]
    status, body, _ = await dcr.register({**SEED_EXAMPLE, "token_endpoint_auth_method": "none"})
    assert status == 201


@pytest.mark.parametrize(
    ("case", "body", "status", "error"),
    INVALID_REGISTRATIONS,
    ids=[case[0] for case in INVALID_REGISTRATIONS],
)
async def test_invalid_registrations_over_http(
    shared_open_dcr: Dcr, case: str, body: Any, status: int, error: str
) -> None:
    got_status, got, _ = await shared_open_dcr.register(body)
    assert (got_status, got["error"]) == (status, error), got
    assert got["error_description"]


@pytest.fixture
async def dcr_open(dcr: Dcr) -> Dcr:
    await dcr.set_registration(True)
    return dcr


@pytest.mark.parametrize(
    ("content_type", "raw", "status"),
    [
        ("application/json", b"", 400),
        ("application/json", b"{", 400),
        ("application/json", b'{"redirect_uris": NaN}', 400),
        ("application/json", b"\xff\xfe\xfd", 400),
        ("text/plain", json.dumps(SEED_EXAMPLE).encode(), 415),
        ("application/x-www-form-urlencoded", b"client_name=x", 415),
        ("application/json", b"[" * 100_000, 413),
        ("application/json", b'{"client_name":"' + b"x" * 70_000 + b'"}', 413),
    ],
)
async def test_non_json_and_oversized_bodies(
    dcr_open: Dcr, content_type: str, raw: bytes, status: int
) -> None:
    got_status, got, _ = await dcr_open.register(
        None, headers={"Content-Type": content_type}, raw=raw
    )
    assert got_status == status, got
    assert isinstance(got, dict) and "error" in got and "error_description" in got


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        # An escaped unpaired surrogate in a member name, quoted back in the description.
        (b'{"redirect_uris":["https://a.example/cb"],"client_name#\\ud800":"x"}', "client_name#"),
        # An integer beyond 64 bits is the integer the client wrote, not a float.
        (b'{"redirect_uris":["https://a.example/cb"],"default_max_age":1' + b"0" * 25 + b"}", None),
        # A number beyond a float's range is refused, not read as infinity.
        (b'{"redirect_uris":["https://a.example/cb"],"default_max_age":1e400}', None),
    ],
    ids=["surrogate-in-member-name", "huge-integer", "huge-float"],
)
async def test_hostile_numbers_and_escapes_get_a_json_400(
    dcr_open: Dcr, raw: bytes, names: str | None
) -> None:
    status, got, headers = await dcr_open.register(None, raw=raw)
    assert status == 400, got
    assert headers["Content-Type"].startswith("application/json")
    assert got["error"] in {"invalid_client_metadata", "invalid_request"}, got
    if names:
        assert names in got["error_description"]


async def test_idempotency_key_replays_and_detects_reuse(dcr_open: Dcr) -> None:
    key = {"Idempotency-Key": "7f2c1d0e-3b1a-4f5e-9c8d-1a2b3c4d5e6f"}
    first_status, first, _ = await dcr_open.register(SEED_EXAMPLE, headers=key)
    second_status, second, _ = await dcr_open.register(SEED_EXAMPLE, headers=key)
    assert first_status == second_status == 201
    assert first == second  # same client, same secret: nothing new was created
    client = open_client(dcr_open.settings.mongodb_url)
    try:
        count = await client[dcr_open.settings.mongodb_database][
            Collections.CLIENTS
        ].count_documents({"tenant_id": dcr_open.tenant_id, "dynamic": True})
    finally:
        await client.close()
    assert count == 1
    status, body, _ = await dcr_open.register({**SEED_EXAMPLE, "client_name": "Other"}, headers=key)
    assert status == 422 and body["error"] == "invalid_request"
    # A failed request does not burn its key.
    bad_key = {"Idempotency-Key": "retry-after-fixing-the-body-0001"}
    status, _, _ = await dcr_open.register({"redirect_uris": []}, headers=bad_key)
    assert status == 400
    status, _, _ = await dcr_open.register({"redirect_uris": []}, headers=bad_key)
    assert status == 400
    status, _, _ = await dcr_open.register(SEED_EXAMPLE, headers={"Idempotency-Key": "k" * 300})
    assert status == 400
    # A guessable key would let anyone replay someone else's credentials: refused.
    status, _, _ = await dcr_open.register(SEED_EXAMPLE, headers={"Idempotency-Key": "1"})
    assert status == 400


async def test_cors_preflight_and_headers(dcr_open: Dcr) -> None:
    response = await dcr_open.registration.options(
        "/oidc/register",
        headers={
            "Host": HOST,
            "Origin": "https://spa.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    status, _, headers = await dcr_open.register(
        SEED_EXAMPLE, headers={"Origin": "https://spa.example"}
    )
    assert status == 201 and headers["Access-Control-Allow-Origin"] == "*"
    status, _, headers = await dcr_open.register({}, headers={"Origin": "https://spa.example"})
    assert status == 400 and headers["Access-Control-Allow-Origin"] == "*"


async def test_registration_while_the_flag_flips_is_consistent(dcr_open: Dcr) -> None:
    """One settings snapshot decides a request: every answer is a full 201 or the disabled
    403. Each flip changes the policy too, so that a request deciding the flag from one
    version and its policy from another would be refused with a 400 instead."""
    confidential = {**SEED_EXAMPLE, "token_endpoint_auth_method": "client_secret_post"}

    async def flip() -> None:
        for enabled in (False, True, False, True, False):
            methods = ["client_secret_post"] if enabled else ["none"]
            await dcr_open.patch_settings(
                {
                    "flags": {"enable_dynamic_client_registration": enabled},
                    "dynamic_client_registration": {"allowed_token_endpoint_auth_methods": methods},
                }
            )

    async def hammer() -> list[tuple[int, Any]]:
        results = []
        for _ in range(40):
            status, body, _ = await dcr_open.register(confidential)
            results.append((status, body))
        return results

    _, results = await asyncio.gather(flip(), hammer())
    for status, body in results:
        assert status in (201, 403), body
        if status == 201:
            assert body["client_secret"] and body["registration_access_token"]
        else:
            assert body["error"] == "access_denied"
    assert {status for status, _ in results} == {201, 403}


async def test_a_private_key_jwt_client_gets_no_secret(shared_open_dcr: Dcr) -> None:
    """Issue 23: a private_key_jwt client authenticates with its registered keys, never a
    secret, so none is issued."""
    jwk = {
        "kty": "RSA",
        "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl" * 2,
        "e": "AQAB",
        "kid": "k1",
    }
    status, body, _ = await shared_open_dcr.register(
        {
            "redirect_uris": ["https://app.example.com/callback"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "PS256",
            "jwks": {"keys": [jwk]},
        }
    )
    assert status == 201, body
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["token_endpoint_auth_signing_alg"] == "PS256"
    assert "client_secret" not in body and "client_secret_expires_at" not in body
