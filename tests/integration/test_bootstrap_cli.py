"""The tenant bootstrap CLI, run as an operator runs it: a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from oidc_common.credentials import verify_secret
from oidc_common.management_api import MANAGEMENT_API, MANAGEMENT_SCOPES
from oidc_common.mongo import Collections, open_client
from oidc_common.signing_keys import open_private_key
from tests.conftest import SettingsFactory
from tests.support.services import settings_env


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tenant_settings_service",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_tenant_once_then_refuse(settings_for: SettingsFactory) -> None:
    settings = settings_for("tenant-settings")
    env = settings_env(settings)
    code, out, err = await _cli(env, "create-tenant", "--domain", "Acme.Example", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["domain"] == "acme.example"

    client = open_client(settings.mongodb_url)
    db = client[settings.mongodb_database]
    try:
        tenant = await db[Collections.TENANTS].find_one({"domain": "acme.example"})
        assert tenant is not None and tenant["_id"] == created["tenant_id"]
        stored_settings = await db[Collections.TENANT_SETTINGS].find_one({"_id": tenant["_id"]})
        assert stored_settings is not None
        assert stored_settings["settings"]["flags"]["enable_dynamic_client_registration"] is False
        assert stored_settings["version"] == 1

        api = await db[Collections.RESOURCE_SERVERS].find_one(
            {"tenant_id": tenant["_id"], "identifier": MANAGEMENT_API}
        )
        assert api is not None and set(api["scopes"]) == set(MANAGEMENT_SCOPES)
        grant = await db[Collections.CLIENT_GRANTS].find_one({"client_id": created["client_id"]})
        assert grant is not None and set(grant["scope"]) == set(MANAGEMENT_SCOPES)

        # The secret is stored only as a hash, and the hash verifies it.
        management_client = await db[Collections.CLIENTS].find_one({"_id": created["client_id"]})
        assert management_client is not None and management_client["is_first_party"] is True
        assert created["client_secret"] not in json.dumps(management_client, default=str)
        assert verify_secret(created["client_secret"], management_client["client_secret_hash"])

        # The private key is sealed: no PEM in the record, and only the KEK opens it.
        key = await db[Collections.SIGNING_KEYS].find_one({"tenant_id": tenant["_id"]})
        assert key is not None
        stored_key = json.dumps(key, default=str)
        assert "PRIVATE KEY" not in stored_key and '"d"' not in json.dumps(key["public_jwk"])
        assert settings.key_encryption_key is not None
        opened = open_private_key(
            key["kid"], key["sealed_private_key"], settings.key_encryption_key
        )
        assert opened.public_jwk["n"] == key["public_jwk"]["n"]

        # Second run: refused with a clear message, and nothing duplicated.
        code, out, err = await _cli(env, "create-tenant", "--domain", "acme.example")
        assert code == 1
        assert "already exists" in err and "Traceback" not in err
        for collection in (Collections.TENANTS, Collections.CLIENTS, Collections.SIGNING_KEYS):
            query = (
                {"domain": "acme.example"}
                if collection == Collections.TENANTS
                else {"tenant_id": tenant["_id"]}
            )
            assert await db[collection].count_documents(query) == 1
    finally:
        await client.close()


async def test_create_tenant_without_kek_is_a_clear_error(settings_for: SettingsFactory) -> None:
    env = settings_env(settings_for("tenant-settings"))
    env["KEY_ENCRYPTION_KEY"] = ""
    code, _, err = await _cli(env, "create-tenant", "--domain", "nokek.example")
    assert code == 2
    assert "KEY_ENCRYPTION_KEY" in err and "Traceback" not in err


async def test_malformed_kek_is_a_clear_error(settings_for: SettingsFactory) -> None:
    env = settings_env(settings_for("tenant-settings"))
    env["KEY_ENCRYPTION_KEY"] = "too-short"
    code, _, err = await _cli(env, "create-tenant", "--domain", "badkek.example")
    assert code == 2
    assert "KEY_ENCRYPTION_KEY" in err and "Traceback" not in err


async def test_rotate_management_secret_replaces_a_lost_secret(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("tenant-settings")
    env = settings_env(settings)
    code, out, err = await _cli(env, "create-tenant", "--domain", "lost.example", "--json")
    assert code == 0, err
    created = json.loads(out)

    code, out, err = await _cli(
        env, "rotate-management-secret", "--domain", "Lost.Example", "--json"
    )
    assert code == 0, err
    rotated = json.loads(out)
    assert rotated["client_id"] == created["client_id"]
    assert rotated["tenant_id"] == created["tenant_id"]
    assert rotated["client_secret"] != created["client_secret"]

    client = open_client(settings.mongodb_url)
    try:
        stored = await client[settings.mongodb_database][Collections.CLIENTS].find_one(
            {"_id": created["client_id"]}
        )
    finally:
        await client.close()
    assert stored is not None
    assert rotated["client_secret"] not in json.dumps(stored, default=str)
    assert verify_secret(rotated["client_secret"], stored["client_secret_hash"])
    assert not verify_secret(created["client_secret"], stored["client_secret_hash"])

    code, _, err = await _cli(env, "rotate-management-secret", "--domain", "nobody.example")
    assert code == 1
    assert "no tenant" in err and "Traceback" not in err
