"""A deleted client takes nothing with it: when the registration service announces
`client.deleted` (RFC 7592 `DELETE`, the Management API, the reaper), the authorize service
deletes the grants users gave it and revokes the refresh tokens it holds.

A shared durable queue (`client_deletions_queue`), so one replica applies each event; the
message is acknowledged once applied and put back when the database is away. Applying it
twice changes nothing. Access tokens of a deleted client already fail introspection and
`/userinfo` checks (the client must be live); this clears what would otherwise stay listed on
the connected-apps page and in `/api/v2/grants`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web

from oidc_common.broker import Broker
from oidc_common.events import CLIENT_DELETED, Event, EventDecodeError
from oidc_common.service import BROKER

from ..tokens.refresh_tokens import RefreshTokens
from .repository import Grants

log = logging.getLogger(__name__)

RETRY_PAUSE_SECONDS = 1.0


def client_deletions_queue(exchange: str) -> str:
    return f"{exchange}.authorize.client-deletions"


async def forget_clients(
    grants: Grants, refresh_tokens: RefreshTokens, tenant_id: str, client_ids: list[str]
) -> None:
    for client_id in client_ids:
        await refresh_tokens.revoke_client(tenant_id, client_id)
        await grants.delete_client(tenant_id, client_id)


def subscribe_client_deletions(
    grants: Grants, refresh_tokens: RefreshTokens
) -> Callable[[Broker], Awaitable[None]]:
    async def subscribe(broker: Broker) -> None:
        channel = await broker.new_channel(prefetch=16)
        queue = await broker.bind_queue(
            channel, client_deletions_queue(broker.exchange_name), [CLIENT_DELETED], exclusive=False
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = Event.from_json(message.body)
            except EventDecodeError:
                await message.ack()  # not ours to understand: dropped, never retried forever
                return
            client_ids = [str(c) for c in event.data.get("client_ids") or ()]
            try:
                await forget_clients(grants, refresh_tokens, event.tenant_id, client_ids)
            except Exception as exc:
                log.warning("client deletion not applied yet", extra={"error": str(exc)})
                await asyncio.sleep(RETRY_PAUSE_SECONDS)  # no hot loop while the database is away
                await message.nack(requeue=True)
                return
            await message.ack()

        await queue.consume(on_message)

    return subscribe


async def client_deletions_context(app: web.Application) -> AsyncIterator[None]:
    """Consume `client.deleted` for as long as the application runs."""
    from ..resources import GRANTS, REFRESH_TOKENS

    await app[BROKER].subscribe(subscribe_client_deletions(app[GRANTS], app[REFRESH_TOKENS]))
    yield
