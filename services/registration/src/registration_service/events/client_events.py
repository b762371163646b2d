"""`client.registered`, `client.updated`, `client.deleted`: so other services drop cached data.

A change is announced before its request is answered, and an announced event is never
lost: `announce` returns once RabbitMQ has confirmed the event (a persistent message, as
settings changes are published) or, when the broker cannot confirm it, once the event is
stored in the outbox collection (`client_event_outbox`), from which the relay publishes it
when the broker is back. A 201 from registration therefore means the client is stored and
its `client.registered` event will be delivered.

Concurrent announcements share one message (`oidc_common.group_commit`): the events of a
batch are grouped by type, tenant and reason, and each group is one message whose
`data.client_ids` lists the clients, confirmed once. Under load a single confirmed publish
carries a whole batch of registrations; at concurrency 1 it carries one.

While the broker refuses or does not confirm, announcements go straight to the outbox for
`BROKER_BACKOFF` seconds (no request waits out a confirm timeout the previous batch already
met), then the broker is tried again.

Delivery is at least once and unordered: the relay publishes an outbox entry, then deletes
it, so a crash in between (or a confirm that timed out although the broker had the message)
publishes it twice, and an entry relayed later can arrive after a newer event about the same
client. Consumers drop cached data, which is idempotent and order-free. Across replicas one
relay runs at a time (a Redis lock; a pass stops well within the lock's lifetime).

When neither the broker nor the database takes an event, `announce` says so (registration
then answers 503) and the loss is logged and counted (`registration_client_events_lost`):
an update or deletion is already stored by then and is answered as done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from prometheus_client import CollectorRegistry, Counter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from redis.asyncio import Redis

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import Event
from oidc_common.group_commit import GroupCommit
from oidc_common.locks import LockBusy, redis_lock
from oidc_common.mongo import Collections, Document, retry_once

log = logging.getLogger(__name__)

# Seconds a request waits for the broker's confirm before the outbox takes the event.
CONFIRM_TIMEOUT = 2.0
# Seconds announcements skip the broker after it refused or did not confirm one.
BROKER_BACKOFF = 1.0
# Seconds between the relay's passes over the outbox, and entries per pass.
RELAY_INTERVAL = 1.0
RELAY_BATCH = 512
# The relay's lock lifetime, and how long a pass may go on publishing under it.
RELAY_LOCK_MS = 30_000
RELAY_PASS_SECONDS = 10.0
DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class ClientEvent:
    type: str
    tenant_id: str
    client_id: str
    reason: str = ""


def envelopes(events: Sequence[ClientEvent]) -> list[tuple[Event, list[ClientEvent]]]:
    """One envelope per (type, tenant, reason), `data.client_ids` in announcement order
    (each client once), each with the events it carries."""
    groups: dict[tuple[str, str, str], list[ClientEvent]] = {}
    for event in events:
        groups.setdefault((event.type, event.tenant_id, event.reason), []).append(event)
    out = []
    for (event_type, tenant_id, reason), members in groups.items():
        data: dict[str, Any] = {"client_ids": list(dict.fromkeys(m.client_id for m in members))}
        if reason:
            data["reason"] = reason
        out.append((Event(event_type, tenant_id, data), members))
    return out


class ClientEvents:
    def __init__(
        self,
        broker: Broker,
        db: AsyncDatabase[Document],
        redis: Redis,
        prefix: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        registry = registry or CollectorRegistry()
        self.published = Counter(
            "registration_client_events_published",
            "Client events confirmed by the broker (one per client)",
            registry=registry,
        )
        self.deferred = Counter(
            "registration_client_events_deferred",
            "Client events stored in the outbox because the broker did not confirm them",
            registry=registry,
        )
        self.lost = Counter(
            "registration_client_events_lost",
            "Client events neither confirmed by the broker nor stored in the outbox",
            registry=registry,
        )
        # Until when (monotonic seconds) announcements skip the broker.
        self._broker_down_until = 0.0
        self._broker = broker
        self._outbox = db[Collections.CLIENT_EVENT_OUTBOX]
        self._redis = redis
        self._lock_key = f"{prefix}lock:client-event-outbox"
        self._commit: GroupCommit[ClientEvent, bool] = GroupCommit(self._announce_batch)

    async def announce(
        self, event_type: str, tenant_id: str, client_id: str, reason: str = ""
    ) -> bool:
        """Announce a change to `client_id`; True once the event is confirmed by the broker
        or stored in the outbox, False if neither could take it (broker and database both
        unreachable: the caller decides what that costs)."""
        return await self._commit.submit(ClientEvent(event_type, tenant_id, client_id, reason))

    async def _announce_batch(self, events: list[ClientEvent]) -> Sequence[bool]:
        """Publish a batch, one confirmed message per group (all at once, under one
        deadline); what the broker did not confirm goes to the outbox. One outcome per
        event: False only where both failed."""
        pending: list[ClientEvent] = []
        if time.monotonic() < self._broker_down_until:
            pending = list(events)
        else:
            groups = envelopes(events)
            publishes = (self._broker.publish(e, timeout=CONFIRM_TIMEOUT) for e, _ in groups)
            results = await asyncio.gather(*publishes, return_exceptions=True)
            for (_, members), result in zip(groups, results, strict=True):
                if isinstance(result, BrokerUnavailable):
                    pending += members
                elif isinstance(result, BaseException):
                    raise result
                else:
                    self.published.inc(len(members))
            if pending:
                self._broker_down_until = time.monotonic() + BROKER_BACKOFF
        if not pending:
            return [True] * len(events)
        try:
            await self._store(pending)
        except Exception as exc:
            self.lost.inc(len(pending))
            log.error("client events neither published nor stored", extra={"error": str(exc)})
            lost = {id(event) for event in pending}
            return [id(event) not in lost for event in events]
        self.deferred.inc(len(pending))
        log.warning("client events kept in the outbox for the broker", extra={"n": len(pending)})
        return [True] * len(events)

    async def _store(self, events: list[ClientEvent]) -> None:
        now = dt.datetime.now(dt.UTC)
        docs = [
            {
                "_id": ObjectId(),  # one entry per announcement: none stands for another
                "type": event.type,
                "tenant_id": event.tenant_id,
                "client_id": event.client_id,
                "reason": event.reason,
                "queued_at": now,
            }
            for event in events
        ]
        try:
            await retry_once(lambda: self._outbox.insert_many(docs, ordered=False))
        except BulkWriteError as exc:
            # Fresh ids collide only with the first attempt's own inserts (a lost reply).
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def relay_forever(self, interval: float = RELAY_INTERVAL) -> None:
        """Publish the outbox while the broker is connected, every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.relay()
            except Exception as exc:  # Redis or the database away: the next pass retries
                log.warning("client event outbox not relayed", extra={"error": str(exc)})

    async def relay(self) -> int:
        """One pass: publish up to RELAY_BATCH outbox entries (oldest first), removing each
        group once the broker confirmed it; returns how many events went out."""
        if not self._broker.is_connected:
            return 0
        try:
            async with redis_lock(
                self._redis, self._lock_key, ttl_ms=RELAY_LOCK_MS, wait_seconds=0
            ):
                return await self._relay_pass()
        except LockBusy:
            return 0  # another replica is relaying

    async def _relay_pass(self) -> int:
        started = time.monotonic()
        cursor = self._outbox.find({}).sort("queued_at", 1).limit(RELAY_BATCH)
        entries: dict[int, Any] = {}  # id(event) -> its entry's _id
        events: list[ClientEvent] = []
        async for doc in cursor:
            event = ClientEvent(doc["type"], doc["tenant_id"], doc["client_id"], doc["reason"])
            entries[id(event)] = doc["_id"]
            events.append(event)
        relayed = 0
        for envelope, members in envelopes(events):
            if time.monotonic() - started > RELAY_PASS_SECONDS:
                break  # well within the lock's lifetime: the next pass goes on
            await self._broker.publish(envelope)  # BrokerUnavailable: the next pass retries
            await self._outbox.delete_many({"_id": {"$in": [entries[id(m)] for m in members]}})
            self.published.inc(len(members))
            relayed += len(members)
        if relayed:
            log.info("client events relayed from the outbox", extra={"n": relayed})
        return relayed

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for announcements in flight (shutdown)."""
        return await self._commit.drain(timeout)
