"""Backing-service outages under a running stack (issue 11, third acceptance bullet).

The stack of `make run` (processes behind the local nginx) runs under light load: two
clients registering (each with an Idempotency-Key), one tenant owner changing a setting.
Each backing service in turn goes away for a few seconds and comes back:

- MongoDB (FerretDB) and RabbitMQ through a TCP proxy of the test's own (tests/support/proxy.py)
  that is cut (every connection aborted, new ones refused, as when the server stops) and
  restored; the shared servers other tests use are never stopped;
- Redis is a redis-server of the test's own, configured like the local stack's
  (deploy/local/redis.conf, append-only file on), really stopped (SIGTERM) and started again.

While one is away, every answer is a 2xx or the documented 503 with Retry-After in the
endpoint's error format, within the configured timeouts (never a 500, never a hang). Once it
answers again, every request succeeds. Afterwards: every client answered 201 is stored
exactly once; replaying each acknowledged registration with its Idempotency-Key (whose
record lived through the Redis restart) gives back the same client and stores nothing new;
the last acknowledged settings change is the stored one, and it was published.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oidc_common.events import CLIENT_REGISTERED, TENANT_SETTINGS_UPDATED
from oidc_common.mongo import Collections, open_client
from tests.support.backing import BackingServices
from tests.support.load import OPEN_POLICY, Answer, Gateway, Load, Seen, collect_events
from tests.support.local_stack import private_stack_config
from tests.support.private_redis import PrivateRedis
from tests.support.proxy import CuttableProxy
from tests.support.services import (
    cleanup_isolated,
    isolated_settings,
    new_tag,
    settings_env,
    with_overrides,
)
from tests.support.stack import load_stack_module
from tests.support.waiting import eventually

# MongoDB stays away longer than a request waits for it (3 s server selection): requests
# sent early in its outage get their 503, later ones wait and succeed once it is back. Then
# a quick restart, as FerretDB's takes: the pool's idle connections are dead and nothing has
# noticed yet (the "every pooled connection fails once").
DOWN_SECONDS = {"mongodb": 4.0, "mongodb quick restart": 0.3, "redis": 2.0, "rabbitmq": 2.5}
BACK_SECONDS = 2.0
# The longest a request may take while a backing service is away: a request fails at its
# first operation that finds no MongoDB, after its server selection (3 s,
# oidc_common.mongo.open_client; inserts queued behind a failing batch fail with it), or
# at its first Redis command (refused at once; 2 s connect and reply timeouts otherwise).
HANG_BOUND = 5.0


@dataclass
class Faulty:
    stack: Any
    gateway_port: int
    creds: dict[str, str]
    database: str
    exchange: str
    redis: PrivateRedis
    mongo_proxy: CuttableProxy
    broker_proxy: CuttableProxy


@pytest.fixture(scope="module")
async def faulty(
    backing: BackingServices, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Faulty]:
    stack_module = load_stack_module()
    tag = new_tag()
    state: Path = tmp_path_factory.mktemp("faults")
    redis = PrivateRedis(state / "redis")
    await asyncio.to_thread(redis.start)
    mongo_proxy = CuttableProxy.for_url(backing.mongodb_url)
    broker_proxy = CuttableProxy.for_url(backing.rabbitmq_url)
    await mongo_proxy.start()
    await broker_proxy.start()
    settings = with_overrides(
        isolated_settings(backing, "e2e", tag),
        mongodb_url=mongo_proxy.url(backing.mongodb_url) + "?directConnection=true",
        rabbitmq_url=broker_proxy.url(backing.rabbitmq_url),
        redis_url=redis.url,
    )
    env = settings_env(settings)
    env.update(SHUTDOWN_DRAIN_SECONDS="0.2", SHUTDOWN_GRACE_SECONDS="5")
    config = private_stack_config(stack_module, state, env, replicas=1)
    stack = stack_module.Stack(config)
    try:
        # Blocking calls in threads: the proxies they go through run on this event loop.
        creds = await asyncio.to_thread(stack_module.demo_tenant, config)
        await asyncio.to_thread(stack.start, 60)
        yield Faulty(
            stack,
            config.gateway_port,
            creds,
            settings.mongodb_database,
            settings.events_exchange,
            redis,
            mongo_proxy,
            broker_proxy,
        )
    finally:
        await asyncio.to_thread(stack.stop)
        await mongo_proxy.close()
        await broker_proxy.close()
        await asyncio.to_thread(redis.stop)
        await cleanup_isolated(backing, tag)


@dataclass(frozen=True)
class Outage:
    service: str
    down_at: float  # time.monotonic()
    back_at: float  # when it answered again


def _judge(answer: Answer, outages: list[Outage]) -> str | None:
    """What is wrong with `answer` given when it was sent, or None."""
    if answer.seconds > HANG_BOUND:
        return f"took {answer.seconds:.1f} s"
    ok = 201 if answer.kind == "register" else 200
    for outage in outages:
        if outage.down_at <= answer.started < outage.back_at:
            if answer.status == ok:
                return None
            if answer.status != 503 or not (answer.retry_after or "").isdigit():
                return f"{answer.status} while {outage.service} was away"
            return _documented_503(answer)
    # Before any outage, after one came back, or straddling the moment one went away (sent
    # just before, answered while it was away: a 503 is as honest as a 2xx).
    straddles = any(answer.started < o.down_at < answer.started + answer.seconds for o in outages)
    if answer.status == ok or (straddles and answer.status == 503):
        return None
    return f"{answer.status} with every backing service up"


def _documented_503(answer: Answer) -> str | None:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.kind == "register" and body.get("error") == "temporarily_unavailable":
        return None
    if answer.kind == "patch" and body.get("statusCode") == 503:
        return None
    return f"undocumented 503 body {answer.body!r}"


async def test_each_backing_service_goes_away_and_comes_back(
    faulty: Faulty, backing: BackingServices
) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        gw = Gateway(session, faulty.gateway_port, timeout=HANG_BOUND + 5)
        token = await gw.management_token(faulty.creds)
        assert (await gw.patch_settings(token, OPEN_POLICY)).status == 200
        names = itertools.count(1)

        async def change_setting() -> Answer:
            return await gw.patch_settings(token, {"friendly_name": f"fault test {next(names)}"})

        async with (
            collect_events(backing.rabbitmq_url, faulty.exchange, CLIENT_REGISTERED) as announced,
            collect_events(
                backing.rabbitmq_url, faulty.exchange, TENANT_SETTINGS_UPDATED
            ) as settings_events,
        ):
            load = Load()
            load.start(lambda: gw.register(idempotent=True), workers=2, pause=0.05)
            load.start(change_setting, workers=1, pause=0.1)
            await asyncio.sleep(1.5)
            outages = [
                await _outage("mongodb", faulty.mongo_proxy.cut, faulty.mongo_proxy.restore),
                await _outage(
                    "mongodb quick restart", faulty.mongo_proxy.cut, faulty.mongo_proxy.restore
                ),
                await _outage(
                    "redis",
                    lambda: asyncio.to_thread(faulty.redis.stop),
                    lambda: asyncio.to_thread(faulty.redis.start),
                ),
                await _outage("rabbitmq", faulty.broker_proxy.cut, faulty.broker_proxy.restore),
            ]
            await load.finish()
            answers = load.answers
            problems = [(a, why) for a in answers if (why := _judge(a, outages)) is not None]

            # Every acknowledged registration, replayed with its key, is the same client.
            acknowledged = [a for a in answers if a.client_id]
            replays = await asyncio.gather(*(gw.replay(str(a.key)) for a in acknowledged))
            changed = [
                (a.client_id, r.status, r.client_id)
                for a, r in zip(acknowledged, replays, strict=True)
                if r.client_id != a.client_id
            ]
            last_change = [a for a in answers if a.kind == "patch" and a.status == 200][-1]
            final = await gw.request(
                "get",
                "GET",
                "/api/v2/tenants/settings",
                headers={"Authorization": f"Bearer {token}"},
            )
            published = await eventually(
                lambda: _published(settings_events, last_change.body["version"]), timeout=10
            )
            answered = [str(a.client_id) for a in acknowledged]
            announced_all = await eventually(
                lambda: _all_in(announced, answered), timeout=5, interval=0.1
            )
            missing_events = len(set(answered) - set(announced.clients))

    stored = await _stored_clients(backing, faulty.database, faulty.creds["tenant_id"])
    outbox = await _outbox(backing, faulty.database, faulty.creds["tenant_id"])
    report = _report(answers, outages)
    report.update(
        replayed=len(replays),
        replays_changed=len(changed),
        clients_answered=len(answered),
        clients_stored=len(stored),
        stored_without_answer=len(set(stored) - set(answered)),
        client_events_missing=missing_events,
        settings_version=final.body.get("version") if isinstance(final.body, dict) else None,
    )
    print(f"\nbacking faults: {report}")

    assert not problems, problems[:5]
    for service in ("mongodb", "redis"):  # what needs them answered 503 while they were away
        assert report[service]["down"].get(503), f"no 503 while {service} was away"
    assert not changed, changed[:5]
    # Every client answered 201 is stored exactly once (and a replay stored nothing new).
    assert len(answered) == len(set(answered))
    assert set(answered) <= set(stored) and len(stored) == len(set(stored))
    # The last acknowledged settings change is what is stored, and it was published (the
    # changes made while the broker was away waited in the outbox).
    versions = [a.body["version"] for a in answers if a.kind == "patch" and a.status == 200]
    assert versions == sorted(set(versions)), "an acknowledged change was overwritten or reused"
    assert final.status == 200
    assert final.body["version"] == last_change.body["version"]
    assert final.body["friendly_name"] == last_change.body["friendly_name"]
    assert published, "the last acknowledged settings change was never published"
    assert outbox == {"pending_publish": False, "published_version": last_change.body["version"]}
    assert announced_all or missing_events <= 2, f"{missing_events} client events missing"


async def _outage(
    service: str, stop: Callable[[], Awaitable[Any]], start: Callable[[], Awaitable[Any]]
) -> Outage:
    down_at = time.monotonic()
    await stop()
    await asyncio.sleep(DOWN_SECONDS[service])
    await start()
    back_at = time.monotonic()
    await asyncio.sleep(BACK_SECONDS)
    return Outage(service, down_at, back_at)


def _report(answers: list[Answer], outages: list[Outage]) -> dict[str, Any]:
    """Statuses per phase (down: sent while the service was away; back: after it came back)
    and the slowest answer while away."""
    report: dict[str, Any] = {
        "requests": len(answers),
        "statuses": dict(Counter(a.status for a in answers)),
    }
    for index, outage in enumerate(outages):
        until = outages[index + 1].down_at if index + 1 < len(outages) else float("inf")
        down = [a for a in answers if outage.down_at <= a.started < outage.back_at]
        back = [a for a in answers if outage.back_at <= a.started < until]
        report[outage.service] = {
            "down": dict(Counter(a.status for a in down)),
            "back": dict(Counter(a.status for a in back)),
            "slowest_down_s": round(max((a.seconds for a in down), default=0), 2),
        }
    return report


async def _published(events: Seen, version: int) -> bool:
    return version in events.versions


async def _all_in(events: Seen, client_ids: list[str]) -> bool:
    return all(events.clients[client_id] > 0 for client_id in client_ids)


async def _stored_clients(backing: BackingServices, database: str, tenant_id: str) -> list[str]:
    client = open_client(backing.mongodb_url)
    try:
        return [
            str(doc["_id"])
            async for doc in client[database][Collections.CLIENTS].find(
                {"tenant_id": tenant_id, "dynamic": True}, {"_id": 1}
            )
        ]
    finally:
        await client.close()


async def _outbox(backing: BackingServices, database: str, tenant_id: str) -> dict[str, Any]:
    client = open_client(backing.mongodb_url)
    try:
        doc = await client[database][Collections.TENANT_SETTINGS].find_one(
            {"_id": tenant_id}, {"_id": 0, "pending_publish": 1, "published_version": 1}
        )
        return dict(doc or {})
    finally:
        await client.close()
