"""`client.registered`, `client.updated`, `client.deleted`: so other services drop cached data.

Published in the background after the change is stored, without publisher confirms: losing
one only delays a cache expiry elsewhere (nothing caches clients for long), so a
registration never waits for the broker, pays no confirm round trip, nor fails because the
broker is down.
"""

from __future__ import annotations

import asyncio
import logging

from oidc_common.broker import Broker, BrokerUnavailable
from oidc_common.events import Event

log = logging.getLogger(__name__)


class ClientEvents:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event_type: str, tenant_id: str, client_id: str, reason: str = "") -> None:
        data = {"client_id": client_id}
        if reason:
            data["reason"] = reason
        task = asyncio.create_task(self._publish(Event(event_type, tenant_id, data)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, event: Event) -> None:
        try:
            await self._broker.publish(event, confirm=False)
        except BrokerUnavailable as exc:
            log.warning("client event not published", extra={"type": event.type, "error": str(exc)})

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
