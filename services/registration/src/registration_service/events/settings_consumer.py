"""Consumes `tenant.settings.updated` into Redis and every replica's in-process cache.

Two queues on the settings exchange:
- a per-replica exclusive queue, so *every* replica sees every change and refreshes its own
  in-process cache (and, idempotently, Redis);
- one durable queue shared by all replicas, so Redis is updated even for changes published
  while no replica was running.
Snapshots are applied by compare-and-set on version: duplicates and reordering are harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from oidc_common.broker import Broker
from oidc_common.events import TENANT_SETTINGS_UPDATED, Event, EventDecodeError
from oidc_common.metrics import SETTINGS_PATH_BUCKETS
from oidc_common.settings_cache import SettingsCache, SettingsSnapshot

from ..settings_gate import GateState, RegistrationGate

log = logging.getLogger(__name__)


async def _decode_or_drop(
    message: AbstractIncomingMessage,
) -> tuple[Event, SettingsSnapshot] | None:
    """The snapshot a message carries; a malformed message is acked away (None)."""
    decoded = _snapshot(message)
    if decoded is None:
        await message.ack()
    return decoded


def _snapshot(message: AbstractIncomingMessage) -> tuple[Event, SettingsSnapshot] | None:
    try:
        event = Event.from_json(message.body)
        settings = event.data.get("settings")
        if event.type != TENANT_SETTINGS_UPDATED or not isinstance(settings, dict):
            raise EventDecodeError("not a settings snapshot")
    except EventDecodeError as exc:
        # Redelivering a malformed message would never fix it: drop it, loudly.
        log.error("dropping malformed settings event", extra={"error": str(exc)})
        return None
    return event, SettingsSnapshot(event.tenant_id, event.version, settings)


def shared_queue_name(exchange: str) -> str:
    """The durable queue all replicas share (it outlives them: operators delete it)."""
    return f"{exchange}.registration.settings-cache"


class GateMetrics:
    """This replica's registration gate as Prometheus metrics, read at each scrape."""

    def __init__(self, gate: RegistrationGate) -> None:
        self._gate = gate

    def collect(self) -> Iterator[Any]:
        decisions = CounterMetricFamily(
            "registration_gate_decisions",
            "Registration gate decisions by state (unknown: answered 503, fail closed)",
            labels=["state"],
        )
        for state in GateState:
            decisions.add_metric([state.value], self._gate.decisions[state])
        yield decisions
        yield GaugeMetricFamily(
            "registration_gate_events_live",
            "1 while settings events reach this replica (its in-process cache is trusted)",
            value=1 if self._gate.events_live else 0,
        )
        yield GaugeMetricFamily(
            "registration_gate_tenants_held",
            "Tenants whose settings this replica holds in process",
            value=self._gate.tenants_held,
        )


class SettingsConsumer:
    def __init__(
        self,
        broker: Broker,
        cache: SettingsCache,
        gate: RegistrationGate,
        registry: CollectorRegistry,
        instance: str,
    ) -> None:
        self._broker = broker
        self._cache = cache
        self._gate = gate
        self._instance = instance or uuid.uuid4().hex[:8]
        self.lag = Histogram(
            "tenant_settings_event_lag_seconds",
            "Time from the settings commit to this replica's cache holding it",
            registry=registry,
            buckets=SETTINGS_PATH_BUCKETS,
        )
        # Replicas that show the same value hold the same settings: every change reaches
        # every replica, so this is "settings version per replica" in one series (a series
        # per tenant would grow with the tenant count).
        self.newest_change = Gauge(
            "registration_settings_newest_change_timestamp_seconds",
            "Commit time of the newest settings change this replica has received",
            registry=registry,
        )
        self.gate_applied = Gauge(
            "registration_settings_gate_applied_timestamp_seconds",
            "When this replica's gate first held the newest settings change (whichever queue "
            "delivered it first); minus the newest change's timestamp: its propagation",
            registry=registry,
        )
        self._newest_change = 0.0
        registry.register(GateMetrics(gate))

    async def subscribe(self, broker: Broker) -> None:
        exchange = broker.exchange_name
        replica_channel = await broker.new_channel()
        replica_queue = await broker.bind_queue(
            replica_channel,
            f"{exchange}.registration.settings.{self._instance}.{uuid.uuid4().hex[:8]}",
            [TENANT_SETTINGS_UPDATED],
            exclusive=True,
        )
        await replica_queue.consume(self._on_replica_message)
        shared_channel = await broker.new_channel()
        shared_queue = await broker.bind_queue(
            shared_channel,
            shared_queue_name(exchange),
            [TENANT_SETTINGS_UPDATED],
            exclusive=False,
        )
        await shared_queue.consume(self._on_shared_message)
        self._gate.consuming = True
        log.info("consuming tenant settings events", extra={"instance": self._instance})

    async def _receive(
        self, message: AbstractIncomingMessage
    ) -> tuple[Event, SettingsSnapshot] | None:
        """Decode a message (a malformed one is acked away: None) and let this replica's
        gate remember its snapshot, whichever queue it came from."""
        decoded = await _decode_or_drop(message)
        if decoded is not None:
            self._gate.remember(decoded[1])
            if decoded[0].occurred_at > self._newest_change:
                self.gate_applied.set(time.time())
                self._newest_change = decoded[0].occurred_at
                self.newest_change.set(self._newest_change)
        return decoded

    async def _on_replica_message(self, message: AbstractIncomingMessage) -> None:
        decoded = await self._receive(message)
        if decoded is None:
            return
        event, snapshot = decoded
        self.lag.observe(max(0.0, time.time() - event.occurred_at))
        try:
            await self._cache.apply(snapshot)
        except Exception as exc:  # the shared queue will retry Redis; this replica is current
            log.warning("redis update from replica queue failed", extra={"error": str(exc)})
        await message.ack()

    async def _on_shared_message(self, message: AbstractIncomingMessage) -> None:
        decoded = await self._receive(message)
        if decoded is None:
            return
        _, snapshot = decoded
        try:
            await self._cache.apply(snapshot)
        except Exception as exc:
            log.warning("redis update failed, requeueing", extra={"error": str(exc)})
            await asyncio.sleep(0.5)
            await message.nack(requeue=True)
            return
        await message.ack()
