"""Reaps dynamically registered clients that are never used or have gone idle.

Per tenant, with that tenant's live policy: clients never used within
`unused_client_ttl_hours` of registration, and clients idle for more than
`idle_client_ttl_days` (never one whose users still hold live refresh tokens). A reaped
client becomes a tombstone without credentials, so the token endpoint can tell it to
register again; tombstones are purged after 30 days. One replica reaps at a time (a lock in
Redis), every replica may try.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from oidc_common.events import CLIENT_DELETED
from oidc_common.locks import claim_once
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.settings_cache import SettingsCache

from ..clients.repository import ClientRepository, idle_filter, never_used_filter
from ..events.client_events import ClientEvents
from .client_cap import ClientCap

log = logging.getLogger(__name__)

TOMBSTONE_RETENTION = dt.timedelta(days=30)
BATCH = 500


@dataclass
class ReapReport:
    never_used: int = 0
    idle: int = 0
    purged: int = 0


class Reaper:
    def __init__(
        self,
        clients: ClientRepository,
        settings: SettingsCache,
        events: ClientEvents,
        cap: ClientCap,
        redis: Redis,
        prefix: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        registry = registry or CollectorRegistry()  # a reaper of its own (tests)
        self.reaped = Counter(
            "registration_reaper_clients_reaped",
            "Dynamic clients the reaper turned into tombstones, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in ("never_used", "idle"):  # both series exist from the start, at 0
            self.reaped.labels(reason)
        self.purged = Counter(
            "registration_reaper_tombstones_purged",
            "Tombstones of reaped clients deleted after their retention",
            registry=registry,
        )
        self._cap = cap
        self._clients = clients
        self._settings = settings
        self._events = events
        self._redis = redis
        self._prefix = prefix
        self._lock_key = f"{prefix}lock:client-reaper"

    async def reap_tenant(self, tenant_id: str, now: dt.datetime | None = None) -> ReapReport:
        now = now or dt.datetime.now(dt.UTC)
        snapshot = await self._settings.read(tenant_id)
        if snapshot is None:
            return ReapReport()
        policy = RegistrationPolicy.from_settings(snapshot.settings)
        report = ReapReport()
        unused_cutoff = now - dt.timedelta(hours=policy.unused_client_ttl_hours)
        unused = never_used_filter(tenant_id, unused_cutoff)
        for client_id in await self._clients.never_used(tenant_id, BATCH, unused_cutoff):
            if not await claim_once(self._redis, f"{self._prefix}evicting:{client_id}"):
                continue  # a registration is evicting it right now
            if await self._clients.reap(client_id, still_matching=unused):
                await self._cap.release(tenant_id)
                await self._events.announce(CLIENT_DELETED, tenant_id, client_id, "never_used")
                self.reaped.labels("never_used").inc()
                report.never_used += 1
        idle_cutoff = now - dt.timedelta(days=policy.idle_client_ttl_days)
        idle = idle_filter(tenant_id, idle_cutoff)
        for client_id in await self._clients.idle_since(tenant_id, idle_cutoff, BATCH):
            if not await claim_once(self._redis, f"{self._prefix}evicting:{client_id}"):
                continue
            if await self._clients.reap(client_id, still_matching=idle):
                await self._cap.release(tenant_id)
                await self._events.announce(CLIENT_DELETED, tenant_id, client_id, "idle")
                self.reaped.labels("idle").inc()
                report.idle += 1
        report.purged = await self._clients.purge_tombstones(tenant_id, now - TOMBSTONE_RETENTION)
        self.purged.inc(report.purged)
        # Re-seed the cap counter from the database on next use: corrects any drift.
        await self._cap.forget(tenant_id)
        return report

    async def run_once(self, now: dt.datetime | None = None) -> ReapReport:
        total = ReapReport()
        for tenant_id in await self._clients.tenants_with_dynamic_clients():
            report = await self.reap_tenant(tenant_id, now)
            total.never_used += report.never_used
            total.idle += report.idle
            total.purged += report.purged
        return total

    async def run_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._redis.set(self._lock_key, "1", nx=True, ex=int(interval)):
                    continue  # another replica reaps this round
                report = await self.run_once()
                if report.never_used or report.idle:
                    log.info(
                        "reaped clients",
                        extra={"never_used": report.never_used, "idle": report.idle},
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("client reaping failed", extra={"error": str(exc)})
