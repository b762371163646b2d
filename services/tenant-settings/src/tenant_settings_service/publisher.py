"""Publishes `tenant.settings.updated` (full snapshot + version) and never loses one.

The PATCH handler publishes right after the commit; if the broker is down, the change stays
flagged in MongoDB and the recovery loop publishes it when the broker is back. Publishing
the same version twice is harmless: consumers apply snapshots by compare-and-set on version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import TENANT_SETTINGS_UPDATED, Event
from oidc_common.locks import LockBusy, redis_lock
from oidc_common.settings_cache import SettingsCache, SettingsSnapshot

from .repository import SettingsRepository, StoredSettings

log = logging.getLogger(__name__)


def settings_event(stored: StoredSettings) -> Event:
    return Event(
        type=TENANT_SETTINGS_UPDATED,
        tenant_id=stored.tenant_id,
        version=stored.version,
        data={"settings": stored.settings},
        # Commit time, so consumers can measure the end-to-end propagation lag.
        occurred_at=stored.updated_at.timestamp(),
    )


class SettingsPublisher:
    def __init__(
        self,
        repository: SettingsRepository,
        broker: Broker,
        redis: Redis,
        prefix: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        registry = registry or CollectorRegistry()  # a publisher of its own (tests)
        self.published = Counter(
            "tenant_settings_events_published",
            "Settings changes published to the broker (confirmed)",
            registry=registry,
        )
        self.deferred = Counter(
            "tenant_settings_events_deferred",
            "Settings changes stored while the broker was unavailable, left to the outbox",
            registry=registry,
        )
        self.backlog = Gauge(
            "tenant_settings_outbox_backlog",
            "Settings changes stored but not yet published (measured every few seconds)",
            registry=registry,
        )
        self._repository = repository
        self._broker = broker
        self._redis = redis
        self._prefix = prefix
        self._cache = SettingsCache(redis, repository.db, prefix)

    def lock(self, tenant_id: str, wait_seconds: float = 3.0) -> AbstractAsyncContextManager[None]:
        """Serialises change-and-publish per tenant (see oidc_common.locks for why)."""
        return redis_lock(
            self._redis,
            f"{self._prefix}lock:tenant-settings:{tenant_id}",
            wait_seconds=wait_seconds,
        )

    async def publish(self, stored: StoredSettings) -> bool:
        """Publish a stored change (confirmed by the broker) and write it to the shared
        cache; True once published, False when the broker was unavailable (the change stays
        flagged for the recovery loop)."""
        # The cache write and the publish run side by side: every replica's gate learns the
        # change from the event, so it must not wait a Redis round trip behind the cache.
        published, _ = await asyncio.gather(self._publish_event(stored), self._write_cache(stored))
        if published:
            await self._repository.mark_published(stored.tenant_id, stored.version)
            self.published.inc()
        return published

    async def _write_cache(self, stored: StoredSettings) -> None:
        # The shared cache learns the change at once, even if the broker is down (the same
        # compare-and-set on version the consumers use, so order does not matter).
        try:
            await self._cache.apply(
                SettingsSnapshot(stored.tenant_id, stored.version, stored.settings)
            )
        except Exception as exc:
            log.warning("settings cache write failed", extra={"error": str(exc)})

    async def _publish_event(self, stored: StoredSettings) -> bool:
        try:
            await self._broker.publish(settings_event(stored))
        except BrokerUnavailable as exc:
            log.warning(
                "settings change stored but not yet published; the recovery loop will retry",
                extra={"tenant_id": stored.tenant_id, "version": stored.version, "error": str(exc)},
            )
            self.deferred.inc()
            return False
        return True

    async def publish_pending(self) -> int:
        if not self._broker.is_connected:
            return 0
        published = 0
        for candidate in await self._repository.pending():
            try:
                async with self.lock(candidate.tenant_id, wait_seconds=0):
                    # Re-read under the lock: a PATCH may have published a newer version.
                    stored = await self._repository.get(candidate.tenant_id)
                    if stored.pending and await self.publish(stored):
                        published += 1
            except LockBusy:
                continue  # a PATCH for this tenant is publishing right now
        return published

    async def measure_backlog(self) -> int:
        """The outbox's size now (every change flagged, not only a pass's first 100)."""
        count = await self._repository.pending_count()
        self.backlog.set(count)
        return count

    async def recover_forever(self, interval: float = 0.5, backlog_interval: float = 5.0) -> None:
        next_measure = 0.0
        while True:
            try:
                if await self.publish_pending():
                    log.info("published settings changes that were waiting for the broker")
                if time.monotonic() >= next_measure:  # a count, not on every tick
                    next_measure = time.monotonic() + backlog_interval
                    await self.measure_backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: try again on the next tick
                log.warning("settings recovery pass failed", extra={"error": str(exc)})
            await asyncio.sleep(interval)
