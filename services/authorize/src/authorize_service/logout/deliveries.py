"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a signed Logout Token to each
client a session signed in to that registered a `backchannel_logout_uri`, at least once,
bounded, surviving a broker outage and restarts.

Durable first: when a session ends, one document per such client goes into MongoDB
(`logout_deliveries`, `_id` = `{sid}:{client_id}`, so a session tells each client once)
before the browser is answered; then `session.ended` is published on the events exchange
(`data`: `sid`, `sub`, `clients`), which wakes the deliverer of every replica. The deliverer
also sweeps every `SWEEP_SECONDS`, so a delivery recorded while the broker was away, or
claimed by a replica that stopped, is made anyway.

Each attempt claims its document for `LEASE_SECONDS` (a conditional update: one replica at a
time; a replica stopping mid-attempt gives its claim back), signs a fresh Logout Token (§2.4:
`iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub`, `sid`; header `typ` logout+jwt; never a
`nonce`) and POSTs it as `logout_token` (§2.5) under
the address guard of metadata-document fetches (`client_id_metadata.addresses`: public
addresses only unless the host is in CIMD_PRIVATE_HOSTS; the connection pinned to the checked
addresses; no redirect followed). A 2xx answer is delivered; anything else is retried with
exponential backoff (`BACKOFF_SECONDS` doubling up to `MAX_BACKOFF_SECONDS`) until
`MAX_ATTEMPTS` (`GUARDED_ATTEMPTS` for a URI the address guard refuses), then given up and
logged. Up to `CONCURRENCY` deliveries run at once, the longest waiting first, so a receiver
that never answers delays no one else's.

Stored shape:

    {"_id": str, "tenant_id": str, "client_id": str, "uri": str, "issuer": str, "sub": str,
     "sid": str, "attempts": int, "next_attempt_at": datetime, "lease_until": datetime,
     "delivered_at": datetime | None, "gave_up_at": datetime | None, "last_error": str | None,
     "created_at": datetime}
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import jwt
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import SESSION_ENDED, Event
from oidc_common.mongo import Collections, Document
from oidc_common.service import BROKER, DB, SETTINGS
from oidc_common.signing_keys import SIGNING_ALG

from ..client_id_metadata.addresses import Resolve, checked_addresses, system_resolve
from ..client_id_metadata.errors import FetchFailed
from ..client_id_metadata.fetcher import PinnedResolver, tls_context
from ..interaction.sessions import LoginSession
from ..keystore import KeyStore
from ..registered_clients import find_live_client

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE: Final = "logout+jwt"
LOGOUT_TOKEN_TTL: Final = 120  # seconds
SWEEP_SECONDS: Final = 2.0
LEASE_SECONDS: Final = 15  # more than an attempt takes (POST_TIMEOUT_SECONDS and signing)
BACKOFF_SECONDS: Final = 2
MAX_BACKOFF_SECONDS: Final = 300
MAX_ATTEMPTS: Final = 12  # about half an hour of retries, then given up
# A URI the address guard refuses (a private address, a name that does not resolve) is
# unlikely to change its mind: fewer tries.
GUARDED_ATTEMPTS: Final = 3
# Deliveries attempted at once by one replica: a receiver that never answers holds one slot
# for POST_TIMEOUT_SECONDS, never the whole queue.
CONCURRENCY: Final = 16
CLAIM_SECONDS: Final = 0.5
POST_TIMEOUT_SECONDS: Final = 5.0
USER_AGENT: Final = "oidc-provider back-channel logout"


def logout_token(key: Any, kid: str, issuer: str, client_id: str, sub: str, sid: str) -> str:
    """A Logout Token (§2.4) for `client_id`."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": secrets.token_urlsafe(18),
        "events": {BACKCHANNEL_EVENT: {}},
        "sub": sub,
        "sid": sid,
    }
    return jwt.encode(
        claims, key, algorithm=SIGNING_ALG, headers={"typ": LOGOUT_TOKEN_TYPE, "kid": kid}
    )


def _backoff(attempts: int) -> int:
    return int(min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)))


class LogoutDeliveries:
    """Records deliveries and makes them (see the module docstring)."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        keystore: KeyStore,
        private_hosts: frozenset[str],
        ca_file: str | None,
        *,
        resolve: Resolve = system_resolve,
    ) -> None:
        self._db = db
        self._collection = db[Collections.LOGOUT_DELIVERIES]
        self._keystore = keystore
        self._private_hosts = private_hosts
        self._ssl = tls_context(ca_file)
        self.resolve = resolve
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def record(self, session: LoginSession, issuer: str) -> int:
        """One delivery per client of `session` with a back-channel logout URI; how many."""
        recorded = 0
        now = dt.datetime.now(dt.UTC)
        for client_id in session.clients:
            client = await find_live_client(self._db, session.tenant_id, client_id)
            uri = client.metadata.get("backchannel_logout_uri") if client is not None else None
            if not isinstance(uri, str):
                continue
            try:
                await self._collection.insert_one(
                    {
                        "_id": f"{session.sid}:{client_id}",
                        "tenant_id": session.tenant_id,
                        "client_id": client_id,
                        "uri": uri,
                        "issuer": issuer,
                        "sub": session.user_id,
                        "sid": session.sid,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "lease_until": now,
                        "delivered_at": None,
                        "gave_up_at": None,
                        "last_error": None,
                        "created_at": now,
                    }
                )
                recorded += 1
            except DuplicateKeyError:
                continue  # already recorded: once per client and session
        return recorded

    async def _claim(self) -> Document | None:
        """The due delivery waiting longest, leased to this replica."""
        now = dt.datetime.now(dt.UTC)
        return await self._collection.find_one_and_update(
            {
                "delivered_at": None,
                "gave_up_at": None,
                "next_attempt_at": {"$lte": now},
                "lease_until": {"$lte": now},
            },
            {"$set": {"lease_until": now + dt.timedelta(seconds=LEASE_SECONDS)}},
            sort=[("next_attempt_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    async def _post(self, uri: str, token: str) -> None:
        """POST the token (§2.5); raises FetchFailed or aiohttp errors, or ValueError for a
        non-2xx answer."""
        parts = urlsplit(uri)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await checked_addresses(
            host, port, resolve=self.resolve, allow_private=host in self._private_hosts
        )
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(host, addresses),
            ssl=self._ssl if parts.scheme == "https" else False,
            use_dns_cache=False,
            force_close=True,
            limit=1,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_SECONDS),
        )
        request = session.post(
            uri,
            data={"logout_token": token},
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Cache-Control": "no-store"},
        )
        async with session, request as response:
            if not 200 <= response.status < 300:
                raise ValueError(f"HTTP {response.status}")

    async def _attempt(self, doc: Document) -> None:
        key = await self._keystore.signing_key(str(doc["tenant_id"]))
        token = logout_token(
            key.private_key,
            key.kid,
            str(doc["issuer"]),
            str(doc["client_id"]),
            str(doc["sub"]),
            str(doc["sid"]),
        )
        attempts = int(doc.get("attempts") or 0) + 1
        now = dt.datetime.now(dt.UTC)
        try:
            await self._post(str(doc["uri"]), token)
        except (FetchFailed, aiohttp.ClientError, ValueError, TimeoutError, OSError) as exc:
            error = str(exc) or type(exc).__name__
            update: dict[str, Any] = {
                "attempts": attempts,
                "last_error": error[:500],
                "lease_until": now,
                "next_attempt_at": now + dt.timedelta(seconds=_backoff(attempts)),
            }
            if attempts >= (GUARDED_ATTEMPTS if isinstance(exc, FetchFailed) else MAX_ATTEMPTS):
                update["gave_up_at"] = now
                log.warning(
                    "back-channel logout given up",
                    extra={"client_id": doc["client_id"], "attempts": attempts, "error": error},
                )
            await self._collection.update_one({"_id": doc["_id"]}, {"$set": update})
            return
        await self._collection.update_one(
            {"_id": doc["_id"]},
            {"$set": {"attempts": attempts, "delivered_at": now, "last_error": None}},
        )
        log.info("back-channel logout delivered", extra={"client_id": doc["client_id"]})

    async def _attempt_claimed(self, doc: Document) -> None:
        try:
            await self._attempt(doc)
        except asyncio.CancelledError:
            # Stopping mid-attempt: give the claim back, so another replica (or this
            # service once restarted) need not wait for the lease to run out.
            release = {"$set": {"lease_until": dt.datetime.now(dt.UTC)}}
            with contextlib.suppress(Exception):
                await asyncio.shield(self._collection.update_one({"_id": doc["_id"]}, release))
            raise

    async def deliver_due(self) -> int:
        """Claim and attempt every due delivery, up to CONCURRENCY at a time, the longest
        waiting first; how many were attempted."""
        attempted = 0
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                while len(running) < CONCURRENCY and (doc := await self._claim()) is not None:
                    running.add(asyncio.create_task(self._attempt_claimed(doc)))
                    attempted += 1
                if not running:
                    return attempted
                # Back to claiming when one finishes, or every CLAIM_SECONDS while all wait on
                # slow receivers (a new logout is not queued behind them).
                done, running = await asyncio.wait(
                    running, timeout=CLAIM_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def run(self) -> None:
        """Deliver until cancelled: on every wake-up, and every SWEEP_SECONDS regardless."""
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database outage: the next sweep tries again
                log.warning("back-channel logout sweep failed", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()


LOGOUT_DELIVERIES = web.AppKey("logout_deliveries", LogoutDeliveries)


async def announce(app: web.Application, session: LoginSession) -> None:
    """Publish `session.ended` (best effort: the sweep delivers without it)."""
    event = Event(
        SESSION_ENDED,
        session.tenant_id,
        {"sid": session.sid, "sub": session.user_id, "clients": list(session.clients)},
    )
    try:
        await app[BROKER].publish(event)
    except BrokerUnavailable as exc:
        log.info("session.ended not published; the sweep delivers", extra={"error": str(exc)})


def _wake_on_session_ended(deliveries: LogoutDeliveries) -> Callable[[Broker], Awaitable[None]]:
    """A per-replica queue of `session.ended` events that wakes this replica's deliverer (the
    delivery itself is in MongoDB: the message only says "now")."""

    async def subscribe(broker: Broker) -> None:
        channel = await broker.new_channel(prefetch=16)
        queue = await broker.bind_queue(
            channel,
            f"{broker.exchange_name}.authorize.session-ended.{uuid.uuid4().hex[:12]}",
            [SESSION_ENDED],
            exclusive=True,
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process():
                deliveries.wake()

        await queue.consume(on_message)

    return subscribe


async def deliveries_context(app: web.Application) -> AsyncIterator[None]:
    """The deliverer's life: created with the app, its loop and its event queue running."""
    from ..resources import KEYSTORE

    settings = app[SETTINGS]
    deliveries = LogoutDeliveries(
        app[DB],
        app[KEYSTORE],
        frozenset(settings.cimd_private_hosts),
        settings.cimd_ca_file,
    )
    app[LOGOUT_DELIVERIES] = deliveries
    await app[BROKER].subscribe(_wake_on_session_ended(deliveries))
    task = asyncio.create_task(deliveries.run(), name="backchannel-logout")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
