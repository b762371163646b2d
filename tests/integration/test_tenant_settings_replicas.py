"""Two tenant-settings replicas on one database: a change is never decided on stale settings.

Each replica remembers the settings it last read or wrote and tries a change on that copy
first (`SettingsRepository`). Through the API, these tests make the copy stale (another
replica's change, a restored document) and check that every answer, and the stored document,
reflects the stored settings; on the repository itself, they count the database commands to
show when the copy saves the read and what a stale one costs, and that "no change" is never
answered from a read begun before the lock was granted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.mongo import Collections, Document, open_client
from tenant_settings_service.repository import SettingsRepository, StoredSettings
from tests.conftest import SettingsFactory
from tests.support.settings_api import SettingsApi, settings_api
from tests.support.tenants import bootstrap_tenant

HOST = "replicas.example"


@dataclass
class Replicas:
    """Two tenant-settings apps on one database, for one tenant."""

    a: SettingsApi
    b: SettingsApi


@pytest.fixture
async def replicas(settings_for: SettingsFactory) -> AsyncIterator[Replicas]:
    settings = settings_for("tenant-settings")
    tenant = await bootstrap_tenant(settings, HOST)
    async with (
        settings_api(settings, HOST, tenant.tenant_id) as a,
        settings_api(settings, HOST, tenant.tenant_id) as b,
    ):
        yield Replicas(a, b)


async def patched(replica: SettingsApi, body: Any) -> dict[str, Any]:
    """The answer to a PATCH that must succeed."""
    status, answer = await replica.patch(body)
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


async def test_a_change_merges_onto_what_another_replica_stored(replicas: Replicas) -> None:
    await patched(replicas.a, {"friendly_name": "Acme"})  # a remembers version 2
    await patched(replicas.b, {"support_email": "help@acme.example"})  # version 3
    answer = await patched(replicas.a, {"picture_url": "https://acme.example/logo.png"})
    assert answer["version"] == 4
    assert answer["friendly_name"] == "Acme"
    assert answer["support_email"] == "help@acme.example"  # b's change was not overwritten
    stored = await replicas.a.stored()
    assert stored["version"] == 4
    assert stored["settings"]["support_email"] == "help@acme.example"
    assert stored["settings"]["picture_url"] == "https://acme.example/logo.png"


async def test_no_change_on_a_stale_copy_is_still_a_change(replicas: Replicas) -> None:
    await patched(replicas.a, {"friendly_name": "Acme"})  # a remembers "Acme"
    await patched(replicas.b, {"friendly_name": "Other"})
    # Against a's copy this patch changes nothing; against the stored settings it does.
    answer = await patched(replicas.a, {"friendly_name": "Acme"})
    assert answer["friendly_name"] == "Acme"
    assert answer["version"] == 4
    stored = await replicas.a.stored()
    assert stored["settings"]["friendly_name"] == "Acme"
    assert stored["version"] == 4


async def test_a_restored_document_with_the_same_version_is_not_mistaken(
    replicas: Replicas,
) -> None:
    await patched(replicas.a, {"friendly_name": "Before restore"})  # a remembers v2
    stored = await replicas.a.stored()
    # The database restored from another history: the same version, other settings.
    restored = {**stored["settings"], "friendly_name": "Restored", "support_email": "r@x.example"}
    client = open_client(replicas.a.settings.mongodb_url)
    try:
        await client[replicas.a.settings.mongodb_database][Collections.TENANT_SETTINGS].update_one(
            {"_id": replicas.a.tenant_id},
            {
                "$set": {
                    "settings": restored,
                    "updated_at": stored["updated_at"] - dt.timedelta(hours=1),
                }
            },
        )
    finally:
        await client.close()
    answer = await patched(replicas.a, {"picture_url": "https://acme.example/logo.png"})
    assert answer["friendly_name"] == "Restored"
    assert answer["support_email"] == "r@x.example"
    assert answer["version"] == 3


class CommandNames(monitoring.CommandListener):
    """The names of the database commands a client sends, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Database:
    db: AsyncDatabase[Document]
    commands: CommandNames
    tenant_id: str


@pytest.fixture
async def database(settings_for: SettingsFactory) -> AsyncIterator[Database]:
    settings = settings_for("tenant-settings")
    tenant = await bootstrap_tenant(settings, "repository.example")
    commands = CommandNames()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, event_listeners=[commands]
    )
    try:
        yield Database(client[settings.mongodb_database], commands, tenant.tenant_id)
    finally:
        await client.close()


async def test_the_remembered_copy_saves_the_read(database: Database) -> None:
    repository = SettingsRepository(database.db)
    await repository.get(database.tenant_id)
    database.commands.names.clear()
    stored, changed = await repository.update(database.tenant_id, {"friendly_name": "Acme"})
    again, _ = await repository.update(database.tenant_id, {"friendly_name": "Acme Inc"})
    assert changed and again.version == stored.version + 1
    assert database.commands.names == ["findAndModify", "findAndModify"]


async def test_a_stale_copy_costs_one_more_round(database: Database) -> None:
    a, b = SettingsRepository(database.db), SettingsRepository(database.db)
    await a.get(database.tenant_id)
    await b.update(database.tenant_id, {"friendly_name": "Other"})
    database.commands.names.clear()
    stored, changed = await a.update(database.tenant_id, {"support_email": "s@x.example"})
    assert database.commands.names == ["findAndModify", "find", "findAndModify"]
    assert changed and stored.settings["friendly_name"] == "Other"


async def test_no_change_is_not_answered_from_a_read_begun_before_the_lock(
    database: Database,
) -> None:
    a, b = SettingsRepository(database.db), SettingsRepository(database.db)
    await a.update(database.tenant_id, {"friendly_name": "Acme"})
    early = await a.get(database.tenant_id)  # the handler's read, begun before the lock...
    await b.update(database.tenant_id, {"friendly_name": "Other"})  # ...which b held
    read: asyncio.Future[StoredSettings] = asyncio.get_running_loop().create_future()
    read.set_result(early)
    stored, changed = await a.update(database.tenant_id, {"friendly_name": "Acme"}, read=read)
    assert changed
    assert (stored.version, stored.settings["friendly_name"]) == (early.version + 2, "Acme")
