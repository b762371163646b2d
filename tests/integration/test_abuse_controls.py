"""Abuse controls of open registration: rate limit, client cap with eviction, reaper."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aio_pika
from redis.asyncio import Redis

from authorize_service.app import create_app as create_authorize_app
from oidc_common.mongo import Collections, open_client
from registration_service.clients.repository import idle_filter, never_used_filter
from registration_service.resources import CLIENT_CAP, CLIENTS, REAPER
from tests.support.registration import HOST, Dcr
from tests.support.services import serve
from tests.support.waiting import eventually

BODY = {"client_name": "Bot", "redirect_uris": ["https://bot.example/cb"]}


async def _clients(dcr: Dcr) -> Any:
    client = open_client(dcr.settings.mongodb_url)
    return client, client[dcr.settings.mongodb_database][Collections.CLIENTS]


async def test_rate_limit_per_ip_then_recovery(dcr: Dcr) -> None:
    await dcr.patch_settings(
        {"dynamic_client_registration": {"rate_limit": {"requests": 3, "window_seconds": 3}}}
    )
    ip_a = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(3):
        assert (await dcr.register(BODY, headers=ip_a))[0] == 201
    status, body, headers = await dcr.register(BODY, headers=ip_a)
    assert status == 429
    assert body["error"] == "too_many_requests"
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 3
    # Another address has its own bucket.
    assert (await dcr.register(BODY, headers={"X-Forwarded-For": "198.51.100.8"}))[0] == 201
    # Invalid requests count too: a flood of garbage cannot bypass the limit.
    assert (await dcr.register({}, headers=ip_a))[0] == 429
    await asyncio.sleep(retry_after)
    assert (await dcr.register(BODY, headers=ip_a))[0] == 201


async def test_rate_limit_keyed_by_software_id_when_the_tenant_says_so(dcr: Dcr) -> None:
    """Issue 12: platforms register many agents from one egress address."""
    limit = {"requests": 2, "window_seconds": 60}
    await dcr.patch_settings({"dynamic_client_registration": {"rate_limit": limit}})
    egress = {"X-Forwarded-For": "198.51.100.20"}
    agent_a, agent_b = {**BODY, "software_id": "agent-a"}, {**BODY, "software_id": "agent-b"}
    assert [(await dcr.register(agent_a, headers=egress))[0] for _ in range(3)] == [201, 201, 429]
    assert (await dcr.register(agent_b, headers=egress))[0] == 429  # off: one bucket per address
    await dcr.patch_settings(
        {"dynamic_client_registration": {"rate_limit": {"by_software_id": True}}}
    )
    other = {"X-Forwarded-For": "198.51.100.21"}
    assert [(await dcr.register(agent_a, headers=other))[0] for _ in range(3)] == [201, 201, 429]
    assert [(await dcr.register(agent_b, headers=other))[0] for _ in range(2)] == [201, 201]


async def test_refused_and_replayed_attempts_spend_tokens_too(dcr: Dcr) -> None:
    await dcr.patch_settings(
        {"dynamic_client_registration": {"rate_limit": {"requests": 4, "window_seconds": 60}}}
    )
    ip = {"X-Forwarded-For": "198.51.100.9"}
    key = {**ip, "Idempotency-Key": "spend-a-token-per-attempt-0123"}
    assert (await dcr.register(BODY, headers=key))[0] == 201
    assert (await dcr.register(BODY, headers=key))[0] == 201  # the replay
    assert (await dcr.register({}, headers=ip))[0] == 400
    assert (await dcr.register(None, raw=b"{", headers=ip))[0] == 400
    # Four attempts, four tokens: the next one is refused, valid or not.
    status, body, _ = await dcr.register(BODY, headers=ip)
    assert (status, body["error"]) == (429, "too_many_requests")
    assert (await dcr.register({}, headers=ip))[0] == 429


async def test_cap_evicts_never_used_clients_first(dcr: Dcr) -> None:
    await dcr.patch_settings({"dynamic_client_registration": {"max_clients": 2}})
    first = (await dcr.register(BODY))[1]
    second = (await dcr.register(BODY))[1]
    mongo, clients = await _clients(dcr)
    try:
        # `second` has been used: it must survive eviction.
        await clients.update_one(
            {"_id": second["client_id"]}, {"$set": {"last_used_at": dt.datetime.now(dt.UTC)}}
        )
        status, third, _ = await dcr.register(BODY)
        assert status == 201
        evicted = await clients.find_one({"_id": first["client_id"]})
        assert evicted is not None and evicted["reaped_at"] is not None
        assert "client_secret_hash" not in evicted
        assert (await clients.find_one({"_id": second["client_id"]}))["reaped_at"] is None
        # Now both live clients were used: nothing can be evicted, so the cap refuses.
        await clients.update_one(
            {"_id": third["client_id"]}, {"$set": {"last_used_at": dt.datetime.now(dt.UTC)}}
        )
        status, body, _ = await dcr.register(BODY)
        assert status == 403 and body["error"] == "access_denied"
        assert "limit" in body["error_description"]
        assert (
            await clients.count_documents(
                {"tenant_id": dcr.tenant_id, "dynamic": True, "reaped_at": None}
            )
            == 2
        )
    finally:
        await mongo.close()


async def test_requests_that_store_no_client_take_no_cap_place(dcr: Dcr) -> None:
    """Only a registration about to store a client takes a place under the cap: a refused
    or replayed one (bad JSON, bad metadata, a replay, a key reused) neither keeps one nor
    makes a valid registration evict a client."""
    await dcr.patch_settings({"dynamic_client_registration": {"max_clients": 3}})
    assert (await dcr.register(BODY))[0] == 201  # the counter exists from here on
    redis = Redis.from_url(dcr.settings.redis_url)
    counter = dcr.registration_app[CLIENT_CAP].key(dcr.tenant_id)
    try:
        assert int(await redis.get(counter)) == 1
        key = {"Idempotency-Key": "cap-place-returned-0123456789"}
        assert (await dcr.register(BODY, headers=key))[0] == 201
        assert int(await redis.get(counter)) == 2
        refused = [
            await dcr.register(None, raw=b"{not json"),
            await dcr.register({"client_name": "no redirect"}),
            await dcr.register({**BODY, "redirect_uris": ["https://x.example/#frag"]}),
            await dcr.register(BODY, headers=key),  # replay of the first answer
            await dcr.register({**BODY, "client_name": "other"}, headers=key),  # 422
        ]
        assert [status for status, _, _ in refused] == [400, 400, 400, 201, 422]
        assert int(await redis.get(counter)) == 2
        # The one place left is still there: taking it needs no eviction.
        assert (await dcr.register(BODY))[0] == 201
        mongo, clients = await _clients(dcr)
        try:
            live = {"tenant_id": dcr.tenant_id, "dynamic": True, "reaped_at": None}
            assert await clients.count_documents(live) == 3
            assert await clients.count_documents({"reaped_at": {"$ne": None}}) == 0
        finally:
            await mongo.close()
    finally:
        await redis.aclose()


async def test_reaper_removes_unused_and_idle_clients_but_not_live_ones(dcr: Dcr) -> None:
    await dcr.patch_settings(
        {
            "dynamic_client_registration": {
                "rate_limit": {"requests": 100},
                "unused_client_ttl_hours": 1,
                "idle_client_ttl_days": 7,
            }
        }
    )
    now = dt.datetime.now(dt.UTC)
    ids = {
        name: (await dcr.register(BODY))[1]["client_id"]
        for name in ("fresh", "unused", "idle", "active", "idle_with_refresh")
    }
    connection = await aio_pika.connect(dcr.settings.rabbitmq_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        dcr.settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    deleted_events = await channel.declare_queue(exclusive=True)
    await deleted_events.bind(exchange, "client.deleted")
    mongo, clients = await _clients(dcr)
    try:
        old = now - dt.timedelta(days=30)
        await clients.update_one({"_id": ids["unused"]}, {"$set": {"created_at": old}})
        await clients.update_one(
            {"_id": ids["idle"]}, {"$set": {"created_at": old, "last_used_at": old}}
        )
        await clients.update_one(
            {"_id": ids["active"]}, {"$set": {"created_at": old, "last_used_at": now}}
        )
        await clients.update_one(
            {"_id": ids["idle_with_refresh"]},
            {
                "$set": {
                    "created_at": old,
                    "last_used_at": old,
                    "refresh_tokens_live_until": now + dt.timedelta(days=10),
                }
            },
        )

        report = await dcr.registration_app[REAPER].run_once()
        assert (report.never_used, report.idle) == (1, 1)
        # The cap counter is dropped after a pass, so it is re-seeded from the database.
        redis = Redis.from_url(dcr.settings.redis_url)
        counter = dcr.registration_app[CLIENT_CAP].key(dcr.tenant_id)
        assert not await redis.exists(counter)
        await redis.aclose()
        state = {
            name: (await clients.find_one({"_id": cid}))["reaped_at"] is not None
            for name, cid in ids.items()
        }
        assert state == {
            "fresh": False,
            "unused": True,
            "idle": True,
            "active": False,
            "idle_with_refresh": False,
        }

        received: list[str] = []

        async def both_announced() -> bool:
            message = await deleted_events.get(fail=False)
            if message is not None:
                await message.ack()
                received.append(message.body.decode())
            return len(received) >= 2

        assert await eventually(both_announced, timeout=10)
        assert any(ids["unused"] in body for body in received)
        assert any(ids["idle"] in body for body in received)
        # A reaped client is told clearly, at the token endpoint, to register again.
        async with serve(create_authorize_app(dcr.settings)) as authorize:
            response = await authorize.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": ids["idle"],
                    "client_secret": "whatever",
                    "audience": "https://api.example/",
                },
                headers={"Host": HOST},
            )
            assert response.status == 401
            answer = await response.json()
            assert answer["error"] == "invalid_client"
            assert "register it again" in answer["error_description"]
        # A second pass finds nothing more to do.
        again = await dcr.registration_app[REAPER].run_once()
        assert (again.never_used, again.idle) == (0, 0)
    finally:
        await mongo.close()
        await connection.close()


async def test_cap_holds_under_concurrent_registrations(dcr: Dcr) -> None:
    await dcr.patch_settings(
        {"dynamic_client_registration": {"max_clients": 5, "rate_limit": {"requests": 1000}}}
    )
    for _ in range(5):
        assert (await dcr.register(BODY))[0] == 201
    results = await asyncio.gather(*(dcr.register(BODY) for _ in range(5)))
    # Each newcomer evicts a different never-used client: everyone gets in, the cap holds.
    assert [status for status, _, _ in results] == [201] * 5
    mongo, clients = await _clients(dcr)
    try:
        live = await clients.count_documents(
            {"tenant_id": dcr.tenant_id, "dynamic": True, "reaped_at": None}
        )
        stored = await clients.count_documents({"tenant_id": dcr.tenant_id, "dynamic": True})
    finally:
        await mongo.close()
    assert live == 5
    assert stored == 10  # 5 tombstones, every answered registration was stored


async def test_a_client_used_after_selection_is_not_reaped(dcr: Dcr) -> None:
    """The reaper re-checks, in its conditional update, what it selected the client by."""
    client_id = (await dcr.register(BODY))[1]["client_id"]
    repository = dcr.registration_app[CLIENTS]
    now = dt.datetime.now(dt.UTC)
    mongo, clients = await _clients(dcr)
    try:
        old = now - dt.timedelta(days=400)
        await clients.update_one({"_id": client_id}, {"$set": {"last_used_at": old}})
        idle = idle_filter(dcr.tenant_id, now - dt.timedelta(days=90))
        assert await repository.idle_since(dcr.tenant_id, now - dt.timedelta(days=90), 10) == [
            client_id
        ]
        # Used between the selection and the reap: it must survive.
        await clients.update_one({"_id": client_id}, {"$set": {"last_used_at": now}})
        assert await repository.reap(client_id, still_matching=idle) is False
        assert (
            await repository.reap(client_id, still_matching=never_used_filter(dcr.tenant_id))
            is False
        )
        assert (await clients.find_one({"_id": client_id}))["reaped_at"] is None
    finally:
        await mongo.close()
