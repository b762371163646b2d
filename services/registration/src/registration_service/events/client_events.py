"""`client.registered`, `client.updated`, `client.deleted`: so other services drop cached data.

A change is answered once its event is *journaled*: the journal is a Redis sorted set
(`{prefix}client-events:journal`), one member per announcement scored by Redis's clock in
milliseconds. It lives in Redis's append-only file like the idempotency records: a restart
of Redis or of the replica loses no entry; a crash of Redis's machine may lose the last
second of them (`appendfsync everysec`, see `oidc_common/redis_client.py`). Publishing
happens off the request path: a background
publisher sends what was journaled, one confirmed persistent message per (type, tenant,
reason) with `data.client_ids`, and removes the members the broker confirmed. A 201 from
registration therefore means the client is stored and its `client.registered` event will
be delivered, without the request waiting for RabbitMQ.

A registration's entry is journaled ahead, by the admission script that grants its place
(`abuse/admission.py`: no extra round trip), *tentatively*: its client is not stored yet.
Other announcements (`announce`) journal their entry after the change is stored; concurrent
ones share one ZADD (`oidc_common.group_commit`).

The relay publishes what the publisher did not: entries older than `relay_age` seconds
(their replica crashed, or gave up on a broker away for longer than `HANDOFF_SECONDS`).
It publishes a tentative entry only if its client is stored (a registration that failed
after its admission leaves one behind; so does one whose client was deleted before the
relay came, and `client.deleted` then tells consumers what they need). A registration whose
insert took longer than `HANDOFF_SECONDS` is announced afresh once stored, as the relay may
have dropped its entry meanwhile. Across replicas one relay runs at a time (a Redis lock; a
pass is cut off well within the lock's lifetime).

Delivery is at least once and unordered: an entry confirmed by the broker but not yet
removed when its replica crashed (or while Redis was away) is published again by the relay,
and an entry relayed later can arrive after a newer event about the same client. Consumers
drop cached data, which is idempotent and order-free.

When Redis cannot journal an announcement, it is published at once with a confirm; when
neither works `announce` says so (an update or deletion is already stored by then and is
answered as done), and the loss is logged and counted (`registration_client_events_lost`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from prometheus_client import CollectorRegistry, Counter
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import CLIENT_REGISTERED, Event
from oidc_common.group_commit import GroupCommit
from oidc_common.locks import LockBusy, redis_lock
from oidc_common.mongo import Collections, Document
from oidc_common.redis_client import NOW_MS_LUA, redis_clock_ms

log = logging.getLogger(__name__)

# Seconds the publisher waits for the broker's confirm of one message.
CONFIRM_TIMEOUT = 2.0
# Seconds the publisher skips the broker after it refused or did not confirm a message.
BROKER_BACKOFF = 1.0
# Seconds the publisher lets entries gather before a publish (off the request path: a
# longer pause makes fewer, larger messages), and entries per publish.
PUBLISH_PAUSE = 0.005
PUBLISH_BATCH = 512
# Seconds after it was made that an entry stays with its publisher while the broker is
# away; older ones are left to the relay (memory stays bounded in a long outage).
HANDOFF_SECONDS = 10.0
# The relay takes entries journaled this many seconds ago or more (longer than any
# publisher holds one, so the two do not both publish it).
RELAY_AGE = 20.0
# Seconds between the relay's passes, entries per pass, its lock's lifetime (ms) and how
# long a pass may go on publishing under it.
RELAY_INTERVAL = 1.0
RELAY_BATCH = 512
RELAY_LOCK_MS = 30_000
RELAY_PASS_SECONDS = 10.0

# A Lua function, composed into scripts after `NOW_MS_LUA` (the admission script's too):
# journals `member` at `key`, scored with Redis's clock in milliseconds, so every replica's
# entries age alike.
JOURNAL_ADD_LUA = """
local function journal_add(key, member)
  redis.call('ZADD', key, now_ms(), member)
end
"""
# KEYS[1] the journal, ARGV the members to add.
_JOURNAL = (
    NOW_MS_LUA
    + JOURNAL_ADD_LUA
    + "for i = 1, #ARGV do journal_add(KEYS[1], ARGV[i]) end\nreturn #ARGV\n"
)


@dataclass(frozen=True)
class ClientEvent:
    type: str
    tenant_id: str
    client_id: str
    reason: str = ""


@dataclass(frozen=True)
class JournalEntry:
    """One announcement as the journal holds it: `member` is unique per announcement (two
    updates of one client are two entries); `tentative`: journaled before its client was
    stored, so the relay checks that it was."""

    event: ClientEvent
    member: str
    tentative: bool = False
    # When it was made (monotonic seconds; no later than when it was journaled).
    made_at: float = field(default_factory=time.monotonic, compare=False)

    @classmethod
    def new(cls, event: ClientEvent, *, tentative: bool = False) -> JournalEntry:
        fields = [secrets.token_hex(8), event.type, event.tenant_id, event.client_id]
        member = orjson.dumps([*fields, event.reason, int(tentative)]).decode()
        return cls(event, member, tentative)

    @classmethod
    def parse(cls, member: str | bytes) -> JournalEntry:
        """Raises ValueError for a member this module did not write."""
        try:
            _, event_type, tenant_id, client_id, reason, tentative = orjson.loads(member)
            event = ClientEvent(str(event_type), str(tenant_id), str(client_id), str(reason))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a client event journal entry: {member!r}") from exc
        text = member.decode() if isinstance(member, bytes) else member
        return cls(event, text, bool(tentative))


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
        *,
        relay_age: float = RELAY_AGE,
    ) -> None:
        registry = registry or CollectorRegistry()
        self.published = Counter(
            "registration_client_events_published",
            "Client events confirmed by the broker (one per client)",
            registry=registry,
        )
        self.deferred = Counter(
            "registration_client_events_deferred",
            "Client events the broker refused or did not confirm, per attempt (they stay "
            "journaled and are tried again)",
            registry=registry,
        )
        self.lost = Counter(
            "registration_client_events_lost",
            "Client events neither journaled nor confirmed by the broker",
            registry=registry,
        )
        self.journal_key = f"{prefix}client-events:journal"
        self._broker = broker
        self._clients = db[Collections.CLIENTS]
        self._redis = redis
        self._lock_key = f"{prefix}lock:client-event-journal"
        self._relay_age = relay_age
        self._journal_script = redis.register_script(_JOURNAL)
        self._journal: GroupCommit[JournalEntry, None] = GroupCommit(self._journal_batch)
        # Journaled, waiting for the publisher; and confirmed but not yet removed.
        self._pending: collections.deque[JournalEntry] = collections.deque()
        self._unremoved: list[str] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Until when (monotonic seconds) the publisher skips the broker.
        self._broker_down_until = 0.0

    def registration(self, tenant_id: str, client_id: str) -> JournalEntry:
        """The tentative `client.registered` entry the admission script journals."""
        return JournalEntry.new(
            ClientEvent(CLIENT_REGISTERED, tenant_id, client_id), tentative=True
        )

    async def registered(self, entry: JournalEntry) -> bool:
        """A registration's client is stored: hand its entry, journaled tentatively by the
        admission script, to the publisher (no round trip). An entry made `HANDOFF_SECONDS`
        ago or more (a slow insert) is announced afresh instead: the relay may have dropped
        it while its client was not stored yet. True once the event will be delivered."""
        if time.monotonic() - entry.made_at < HANDOFF_SECONDS:
            self._hand_over(entry)
            return True
        return await self.announce(entry.event.type, entry.event.tenant_id, entry.event.client_id)

    def _hand_over(self, entry: JournalEntry) -> None:
        self._pending.append(entry)
        self._idle.clear()
        self._wakeup.set()

    async def announce(
        self, event_type: str, tenant_id: str, client_id: str, reason: str = ""
    ) -> bool:
        """Announce a stored change to `client_id`; True once its event is journaled (or,
        with Redis away, confirmed by the broker), False if neither could take it."""
        entry = JournalEntry.new(ClientEvent(event_type, tenant_id, client_id, reason))
        try:
            # Shielded: the change is stored, so a cancelled caller still journals its event
            # (then the relay publishes it).
            await asyncio.shield(self._journal.submit(entry))
        except Exception as exc:
            log.warning("client event not journaled, publishing it", extra={"error": str(exc)})
            [(envelope, _)] = envelopes([entry.event])
            try:
                await self._broker.publish(envelope, timeout=CONFIRM_TIMEOUT)
            except BrokerUnavailable as again:
                self.lost.inc()
                log.error("client event lost", extra={"error": str(again)})
                return False
            self.published.inc()
            return True
        self._hand_over(entry)
        return True

    async def _journal_batch(self, entries: list[JournalEntry]) -> Sequence[None]:
        await self._journal_script(keys=[self.journal_key], args=[e.member for e in entries])
        return [None] * len(entries)

    async def publish_forever(self) -> None:
        """The publisher: sends what was journaled, in batches, until cancelled."""
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(PUBLISH_PAUSE)  # let the batch gather
            self._wakeup.clear()
            try:
                await self._publish_pending()
            except Exception as exc:  # never stop publishing; the relay is the backstop
                log.warning("client events not published", extra={"error": str(exc)})
            if self._pending:
                await asyncio.sleep(max(0.0, self._broker_down_until - time.monotonic()))
                self._wakeup.set()
            else:
                self._idle.set()

    async def _publish_pending(self) -> None:
        now = time.monotonic()
        if any(now - entry.made_at >= HANDOFF_SECONDS for entry in self._pending):
            # Still journaled: the relay publishes them. (Entries arrive in the order their
            # changes were stored, not quite the order they were made: the whole queue.)
            self._pending = collections.deque(
                e for e in self._pending if now - e.made_at < HANDOFF_SECONDS
            )
        if now < self._broker_down_until or not self._pending:
            return
        batch = [self._pending.popleft() for _ in range(min(PUBLISH_BATCH, len(self._pending)))]
        confirmed, refused = await self._publish(batch)
        if refused:
            self.deferred.inc(len(refused))
            self._broker_down_until = time.monotonic() + BROKER_BACKOFF
            self._pending.extendleft(reversed(refused))
        await self._forget([entry.member for entry in confirmed])

    async def _publish(
        self, entries: list[JournalEntry]
    ) -> tuple[list[JournalEntry], list[JournalEntry]]:
        """Publish one confirmed message per group, all at once: (confirmed, refused)."""
        by_event = {id(entry.event): entry for entry in entries}
        groups = envelopes([entry.event for entry in entries])
        publishes = (self._broker.publish(e, timeout=CONFIRM_TIMEOUT) for e, _ in groups)
        results = await asyncio.gather(*publishes, return_exceptions=True)
        confirmed: list[JournalEntry] = []
        refused: list[JournalEntry] = []
        for (_, members), result in zip(groups, results, strict=True):
            if isinstance(result, BrokerUnavailable):
                refused += (by_event[id(m)] for m in members)
            elif isinstance(result, BaseException):
                raise result
            else:
                confirmed += (by_event[id(m)] for m in members)
        self.published.inc(len(confirmed))
        return confirmed, refused

    async def _forget(self, members: list[str]) -> None:
        """Remove the publisher's confirmed entries from the journal; those Redis does not
        take now are tried again with its next batch (if this replica stops first, the relay
        publishes them once more: at least once)."""
        members = self._unremoved + members
        if not members:
            return
        try:
            await self._redis.zrem(self.journal_key, *members)
        except Exception as exc:
            self._unremoved = members[-PUBLISH_BATCH * 8 :]
            log.warning("published client events not removed", extra={"error": str(exc)})
        else:
            self._unremoved = []

    async def relay_forever(self, interval: float = RELAY_INTERVAL) -> None:
        """Publish the journal's old entries while the broker is connected, every
        `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.relay()
            except Exception as exc:  # Redis or the database away: the next pass retries
                log.warning("client event journal not relayed", extra={"error": str(exc)})

    async def relay(self) -> int:
        """One pass over entries older than the relay age (oldest first, up to RELAY_BATCH
        a round, within RELAY_PASS_SECONDS): publish them (a tentative one only if its
        client is stored), then remove them; returns how many events went out."""
        if not self._broker.is_connected:
            return 0
        try:
            async with redis_lock(
                self._redis, self._lock_key, ttl_ms=RELAY_LOCK_MS, wait_seconds=0
            ):
                # Cut off well within the lock's lifetime (a round stuck on a slow backend),
                # so no other replica relays the same entries meanwhile.
                async with asyncio.timeout(RELAY_LOCK_MS / 2000):
                    return await self._relay_pass()
        except LockBusy:
            return 0  # another replica is relaying

    async def _relay_pass(self) -> int:
        started = time.monotonic()
        relayed = 0
        while time.monotonic() - started < RELAY_PASS_SECONDS:
            newest = await redis_clock_ms(self._redis) - int(self._relay_age * 1000)
            members = cast(
                list[bytes],
                await self._redis.zrangebyscore(
                    self.journal_key, "-inf", newest, start=0, num=RELAY_BATCH
                ),
            )
            if not members:
                break
            entries: list[JournalEntry] = []
            unreadable: list[bytes] = []
            for member in members:
                try:
                    entries.append(JournalEntry.parse(member))
                except ValueError:
                    unreadable.append(member)
            if unreadable:
                log.error("unreadable journal entries dropped", extra={"n": len(unreadable)})
                await self._redis.zrem(self.journal_key, *unreadable)
            due, abandoned = await self._stored_only(entries)
            confirmed, refused = await self._publish(due) if due else ([], [])
            done = [entry.member for entry in (*confirmed, *abandoned)]
            if done:  # if Redis refuses, the next pass publishes them again: at least once
                await self._redis.zrem(self.journal_key, *done)
            relayed += len(confirmed)
            if refused:
                break  # the broker is away again: the next pass retries
        if relayed:
            log.info("client events relayed from the journal", extra={"n": relayed})
        return relayed

    async def _stored_only(
        self, entries: list[JournalEntry]
    ) -> tuple[list[JournalEntry], list[JournalEntry]]:
        """(entries to publish, tentative entries whose client was never stored)."""
        tentative = {entry.event.client_id for entry in entries if entry.tentative}
        stored: set[str] = set()
        if tentative:
            cursor = self._clients.find({"_id": {"$in": sorted(tentative)}}, {"_id": 1})
            stored = {str(doc["_id"]) async for doc in cursor}
        due = [e for e in entries if not e.tentative or e.event.client_id in stored]
        abandoned = [e for e in entries if e.tentative and e.event.client_id not in stored]
        return due, abandoned

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the journal writes queued, then for the publisher
        to hold nothing (shutdown); True if both happened in time. What the publisher could
        not publish stays journaled for the relay."""
        deadline = time.monotonic() + timeout
        if not await self._journal.drain(timeout):
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - time.monotonic()))
        return self._idle.is_set()
