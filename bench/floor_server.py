"""The benchmark's library floor: a registration's I/O with none of the service's logic.

Per request, what a registration sends through the libraries the service is built on, and
no more: aiohttp reads the body (orjson parses it); the request queues for one Redis script
per batch (a counter and a journal entry per request, as the admission script grants a place
and journals the event); its client document (bench/common.py `client_document`, into a
collection with the clients' indexes) queues for one `insert_many` per batch; it is
answered 201 with the client (orjson); a body that is not a JSON object gets a 400. Off
the request path a publisher sends what was journaled, after the service's short pause, as
one confirmed, persistent, not mandatory RabbitMQ message, then removes
those journal entries, as the service does (registration_service.events.client_events; its
message is a little larger). The batches go through the service's group commit
(oidc_common.group_commit): how many requests each gathers follows from the timing, as in
the service. Start-up objects are frozen out of the collector, as in the service.

Left out, because it is the service's own work: validation, policy and tenancy, middleware
(request id, metrics, CORS, error formats), secret hashing, idempotency, the client
representation, and failure handling; and what the service alone asks of libraries
(metrics, aio-pika's robust connection). The floor's CPU per registration is what those
libraries cost on this machine for a registration's I/O; the service's, above it, is its
own work.

Usage: python floor_server.py PORT, with the services' environment (bench/common.py
`service_env`): the same database, Redis prefix and exchange as the service under test.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import sys
from collections.abc import Sequence

import aio_pika
import orjson
import uvloop
from aiohttp import web
from common import client_document

from oidc_common.config import Settings
from oidc_common.events import CLIENT_REGISTERED
from oidc_common.group_commit import GroupCommit
from oidc_common.mongo import INDEXES, Collections, open_client
from oidc_common.redis_client import NOW_MS_LUA, open_redis
from registration_service.events.client_events import JOURNAL_ADD_LUA, PUBLISH_PAUSE

COLLECTION = "floor_clients"
# One call per batch: a counter per request and its journal entry, scored by Redis's clock.
ADMIT = (
    NOW_MS_LUA
    + JOURNAL_ADD_LUA
    + """
local counts = {}
for i, member in ipairs(ARGV) do
    counts[i] = redis.call('INCR', KEYS[1])
    journal_add(KEYS[2], member)
end
redis.call('PEXPIRE', KEYS[1], 1000)
return counts
"""
)


async def serve(port: int) -> None:
    """Serve `POST /oidc/register` and `GET /readyz` on 127.0.0.1:`port` until stopped."""
    settings = Settings.from_env("registration")
    redis = open_redis(settings.redis_url)
    mongo = open_client(settings.mongodb_url)
    clients = mongo[settings.mongodb_database][COLLECTION]
    for index in INDEXES[Collections.CLIENTS]:
        await clients.create_indexes([index])
    connection = await aio_pika.connect(settings.rabbitmq_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(
        settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    counter = f"{settings.redis_prefix}floor:count"
    journal = f"{settings.redis_prefix}floor:journal"
    script = redis.register_script(ADMIT)
    journaled: list[str] = []
    pending = asyncio.Event()

    async def admit(members: list[str]) -> Sequence[int]:
        return list(await script(keys=[counter, journal], args=members))

    async def insert(documents: list[dict[str, object]]) -> Sequence[None]:
        await clients.insert_many(documents, ordered=False)
        return [None] * len(documents)

    admissions: GroupCommit[str, int] = GroupCommit(admit)
    inserts: GroupCommit[dict[str, object], None] = GroupCommit(insert)

    async def publish_forever() -> None:
        while True:
            await pending.wait()
            await asyncio.sleep(PUBLISH_PAUSE)  # the service's pause: batches gather alike
            pending.clear()
            members = journaled[:]
            del journaled[:]
            body = orjson.dumps({"type": CLIENT_REGISTERED, "client_ids": members})
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            # Not mandatory, as the service's: no queue may be bound, and a returned message
            # would cost a round trip the service never pays.
            await exchange.publish(message, routing_key=CLIENT_REGISTERED, mandatory=False)
            await redis.zrem(journal, *members)

    async def register(request: web.Request) -> web.Response:
        if publisher.done():  # it failed: answers without its work would flatter the floor
            raise web.HTTPServiceUnavailable(text="the floor's publisher stopped")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body is not a JSON object")
        document = client_document()
        member = str(document["_id"])
        await admissions.submit(member)
        await inserts.submit(document)
        journaled.append(member)
        pending.set()
        answer = {
            "client_id": member,
            "client_secret": secrets.token_urlsafe(32),
            "client_name": body.get("client_name"),
            "redirect_uris": body.get("redirect_uris"),
            "client_secret_expires_at": 0,
        }
        return web.Response(body=orjson.dumps(answer), status=201, content_type="application/json")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    publisher = asyncio.create_task(publish_forever())
    app = web.Application()
    app.router.add_post("/oidc/register", register)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    gc.collect()
    gc.freeze()
    try:
        await asyncio.Event().wait()  # until the benchmark stops the process
    finally:
        publisher.cancel()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
