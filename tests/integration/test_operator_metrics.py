"""The metrics the operators' dashboard (deploy/observability/) reads that the request
metrics do not give: the registration gate's state, the newest settings change each replica
holds, reaper deletions, the settings outbox (published, deferred, backlog) and the settings
write's time."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from oidc_common.broker import BrokerUnavailable
from oidc_common.mongo import Collections
from oidc_common.settings_cache import SettingsUnavailable
from registration_service.resources import REAPER
from registration_service.settings_gate import GateState, RegistrationGate
from tenant_settings_service.resources import PUBLISHER
from tests.support.registration import Dcr

BODY = {"client_name": "Metrics probe", "redirect_uris": ["https://app.example.com/cb"]}


async def samples(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a service's /metrics: (name, sorted labels) -> value."""
    response = await client.get("/metrics")
    assert response.status == 200
    found = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_the_gate_reports_its_decisions_and_its_newest_settings(dcr: Dcr) -> None:
    status, _, _ = await dcr.register(BODY)
    assert status == 201
    changed_at = time.time()
    await dcr.set_registration(False)
    status, _, _ = await dcr.register(BODY)
    assert status == 403
    found = await samples(dcr.registration)
    assert found[("registration_gate_decisions_total", (("state", "enabled"),))] >= 1
    assert found[("registration_gate_decisions_total", (("state", "disabled"),))] >= 1
    assert found[("registration_gate_decisions_total", (("state", "unknown"),))] == 0
    assert found[("registration_gate_events_live", ())] == 1
    assert found[("registration_gate_tenants_held", ())] >= 1
    newest = found[("registration_settings_newest_change_timestamp_seconds", ())]
    assert changed_at - 5 < newest < time.time() + 1
    # The gate held it after its commit and before now: its propagation, per replica.
    applied = found[("registration_settings_gate_applied_timestamp_seconds", ())]
    assert newest <= applied + 0.001 and applied < time.time() + 1


class _Unreachable:
    async def read(self, tenant_id: str, database_first: bool = False) -> None:
        raise SettingsUnavailable("every source is down")


class _BrokerDown:
    is_connected = False
    generation = 0


async def test_an_unknown_flag_is_counted_as_such() -> None:
    gate = RegistrationGate(_Unreachable(), _BrokerDown())  # type: ignore[arg-type]
    decision = await gate.decide("tenant")
    assert decision.state is GateState.UNKNOWN
    assert gate.decisions[GateState.UNKNOWN] == 1 and not gate.events_live


async def test_reaper_deletions_are_counted_by_reason(dcr: Dcr) -> None:
    await dcr.set_registration(True)
    for _ in range(2):
        status, _, _ = await dcr.register(BODY)
        assert status == 201
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # past the 24 h of never-used
    report = await dcr.registration_app[REAPER].run_once(later)
    assert report.never_used >= 2
    # Tombstones are kept 30 days, then purged.
    purge = await dcr.registration_app[REAPER].run_once(later + dt.timedelta(days=31))
    assert purge.purged >= 2
    found = await samples(dcr.registration)
    key = ("registration_reaper_clients_reaped_total", (("reason", "never_used"),))
    assert found[key] == report.never_used
    assert found[("registration_reaper_clients_reaped_total", (("reason", "idle"),))] == 0
    assert found[("registration_reaper_tombstones_purged_total", ())] == purge.purged


async def test_the_settings_outbox_reports_published_deferred_and_backlog(dcr: Dcr) -> None:
    publisher = dcr.settings_client.app[PUBLISHER]
    before = await samples(dcr.settings_client)
    await dcr.set_registration(False)  # a change (the fixture turned it on)
    after = await samples(dcr.settings_client)
    published = ("tenant_settings_events_published_total", ())
    assert after[published] == before.get(published, 0) + 1
    # A change stored but not published (as when the broker is down at PATCH time): the
    # backlog shows it until the outbox publishes it.
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(dcr.settings.mongodb_url)
    try:
        settings = mongo[dcr.settings.mongodb_database][Collections.TENANT_SETTINGS]
        await settings.update_one({"_id": dcr.tenant_id}, {"$set": {"pending_publish": True}})
        assert await publisher.measure_backlog() == 1
        assert (await samples(dcr.settings_client))[("tenant_settings_outbox_backlog", ())] == 1
        assert await publisher.publish_pending() == 1
        assert await publisher.measure_backlog() == 0
    finally:
        await mongo.close()
    found = await samples(dcr.settings_client)
    assert found[("tenant_settings_outbox_backlog", ())] == 0
    assert found[published] == after[published] + 1
    assert found[("tenant_settings_events_deferred_total", ())] == 0

    class _Down:
        async def publish(self, *_: Any, **__: Any) -> None:
            raise BrokerUnavailable("down")

    stored = await publisher._repository.get(dcr.tenant_id)
    real_broker = publisher._broker
    publisher._broker = _Down()
    try:
        assert await publisher.publish(stored) is False
    finally:
        publisher._broker = real_broker
    found = await samples(dcr.settings_client)
    assert found[("tenant_settings_events_deferred_total", ())] == 1


async def test_the_settings_write_is_timed(dcr: Dcr) -> None:
    count = ("tenant_settings_write_seconds_count", ())
    total = ("tenant_settings_write_seconds_sum", ())
    before = await samples(dcr.settings_client)
    started = time.perf_counter()
    await dcr.set_registration(False)  # a change (the fixture turned it on): one write
    elapsed = time.perf_counter() - started
    after = await samples(dcr.settings_client)
    assert after[count] == before.get(count, 0) + 1
    assert 0 < after[total] - before.get(total, 0) < elapsed
    await dcr.set_registration(False)  # no change: nothing written, nothing timed
    assert (await samples(dcr.settings_client))[count] == after[count]
