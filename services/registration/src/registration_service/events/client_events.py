"""`client.registered`, `client.updated`, `client.deleted`: so other services drop cached data.

Published in the background after the change is stored, without publisher confirms: losing
one only delays a cache expiry elsewhere (nothing caches clients for long), so a
registration never waits for the broker, pays no confirm round trip, nor fails because the
broker is down.

Events wait in an in-process buffer, published in order by one background task. While the
broker is unreachable they stay there (up to `max_pending`; beyond that new ones are dropped
and counted) and go out once it is back. At shutdown `drain` publishes what is buffered
before the broker connection closes. An event already handed to a connection that then
breaks is lost (no confirms): that, a buffer overflow, and a shutdown while the broker is
down are the only ways one goes missing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import Event

log = logging.getLogger(__name__)

# Seconds between attempts while the broker is unreachable.
RETRY_INTERVAL = 0.5


class ClientEvents:
    def __init__(self, broker: Broker, max_pending: int = 10_000) -> None:
        self._broker = broker
        self._max_pending = max_pending
        self._buffer: collections.deque[Event] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is buffered or being published
        self._idle.set()
        self._pump: asyncio.Task[None] | None = None
        self.dropped = 0

    def emit(self, event_type: str, tenant_id: str, client_id: str, reason: str = "") -> None:
        """Queue an event about `client_id`; never blocks, never raises."""
        if len(self._buffer) >= self._max_pending:
            self.dropped += 1
            log.warning("client event dropped: buffer full", extra={"type": event_type})
            return
        data = {"client_id": client_id}
        if reason:
            data["reason"] = reason
        self._buffer.append(Event(event_type, tenant_id, data))
        self._idle.clear()
        self._wakeup.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="client-events")

    async def _run(self) -> None:
        unavailable = False
        while True:
            if not self._buffer:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            event = self._buffer[0]
            try:
                await self._broker.publish(event, confirm=False)
            except BrokerUnavailable as exc:
                if not unavailable:  # once per outage, not once per event
                    log.warning(
                        "client events waiting for the broker",
                        extra={"pending": len(self._buffer), "error": str(exc)},
                    )
                unavailable = True
                await asyncio.sleep(RETRY_INTERVAL)
                continue
            unavailable = False
            # Only this task takes from the left; `emit` appends on the right.
            self._buffer.popleft()

    async def drain(self, timeout: float = 5.0) -> None:
        """Publish what is buffered, waiting at most `timeout` seconds, then stop the
        background task; what could not be published is logged as lost."""
        if self._pump is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self._pump = None
        if self._buffer:
            log.warning("client events not published at shutdown", extra={"n": len(self._buffer)})
