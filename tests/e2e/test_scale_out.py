"""Registration scaled out without Docker: three processes behind the local nginx gateway,
as `make run REGISTRATION_REPLICAS=3` starts them (issue 11, second acceptance bullet).

Under light, bounded load through the gateway: every replica serves a share; turning the
registration flag off and on is obeyed by every replica (asked directly, not through the
gateway); one replica gets SIGTERM mid-load (it drains, finishes what it has, flushes its
inserts and events, exits 0) and is started again. Then no request went unanswered or got
a 5xx, every client answered 201 is stored exactly once, no client is stored that was not
answered, and every answered client's `client.registered` event was published.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oidc_common.events import CLIENT_REGISTERED
from oidc_common.mongo import Collections, open_client
from tests.support.backing import BackingServices
from tests.support.load import (
    OPEN_POLICY,
    Answer,
    Gateway,
    Load,
    Seen,
    collect_events,
    served,
)
from tests.support.local_stack import private_stack_config
from tests.support.services import cleanup_isolated, isolated_settings, new_tag, settings_env
from tests.support.stack import load_stack_module
from tests.support.waiting import eventually

REPLICAS = 3
VICTIM = "registration-2"
ROUTE = "/oidc/register"
DRAIN_SECONDS = 1.0
GRACE_SECONDS = 10.0
FLAG_OFF = {"flags": {"enable_dynamic_client_registration": False}}
FLAG_ON = {"flags": {"enable_dynamic_client_registration": True}}


class Scaled:
    def __init__(self, stack: Any, config: Any, creds: dict[str, str], database: str) -> None:
        self.stack = stack
        self.config = config
        self.creds = creds
        self.database = database
        self.exchange = config.env["EVENTS_EXCHANGE"]

    @property
    def replica_ports(self) -> list[int]:
        ports: list[int] = self.config.replica_ports()
        return ports


@pytest.fixture(scope="module")
def scaled(backing: BackingServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaled]:
    stack_module = load_stack_module()
    tag = new_tag()
    settings = isolated_settings(backing, "e2e", tag)
    env = settings_env(settings)
    env.update(
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        # Look at the whole process while it runs: warnings and errors only.
        LOG_LEVEL="WARNING",
    )
    state: Path = tmp_path_factory.mktemp("scaled")
    config = private_stack_config(stack_module, state, env, REPLICAS)
    creds = stack_module.demo_tenant(config)
    stack = stack_module.Stack(config)
    stack.start(timeout=60)
    try:
        yield Scaled(stack, config, creds, settings.mongodb_database)
    finally:
        stack.stop()
        asyncio.run(cleanup_isolated(backing, tag))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        yield client


async def _every_replica_answers(gw: Gateway, ports: list[int], status: int) -> list[Answer]:
    """Register straight at each replica until every one answers `status` (at most 10 s);
    every answer is returned (201s among them are clients too)."""
    answers: list[Answer] = []
    pending = set(ports)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        for port in sorted(pending):
            answer = await gw.register(port=port)
            answers.append(answer)
            if answer.status == status:
                pending.discard(port)
        await asyncio.sleep(0.01)
    assert not pending, f"replicas on {sorted(pending)} never answered {status}"
    return answers


async def test_three_replicas_share_load_obey_the_flag_and_survive_a_restart(
    scaled: Scaled, backing: BackingServices, session: aiohttp.ClientSession
) -> None:
    stack, ports = scaled.stack, scaled.replica_ports
    gw = Gateway(session, scaled.config.gateway_port)
    token = await gw.management_token(scaled.creds)
    direct: list[Answer] = []
    async with collect_events(backing.rabbitmq_url, scaled.exchange, CLIENT_REGISTERED) as events:
        assert (await gw.patch_settings(token, OPEN_POLICY)).status == 200
        direct += await _every_replica_answers(gw, ports, 201)

        # 1. Light load through the gateway: every replica serves a share.
        spread = Load()
        spread.start(gw.register, workers=4, pause=0.005, limit=300)
        await spread.wait(timeout=30)
        shares = [await served(session, port, ROUTE, "201") for port in ports]
        assert all(share > 0 for share in shares), shares

        # 2. The flag, off then on: every replica obeys within moments.
        flipped = time.monotonic()
        assert (await gw.patch_settings(token, FLAG_OFF)).status == 200
        direct += await _every_replica_answers(gw, ports, 403)
        off_seconds = time.monotonic() - flipped
        assert (await gw.patch_settings(token, FLAG_ON)).status == 200
        direct += await _every_replica_answers(gw, ports, 201)

        # 3. SIGTERM one replica mid-load, start it again.
        before = {port: await served(session, port, ROUTE, "201") for port in ports}
        rolling = Load()
        rolling.start(gw.register, workers=4, pause=0.02, limit=5000)
        assert await eventually(lambda: _answered(rolling, 150), timeout=20)
        victim_port = stack.instances[VICTIM][1]
        victim_before_sigterm = await served(session, victim_port, ROUTE, "201")
        signalled = time.monotonic()
        stack.terminate(VICTIM)
        readiness = await _readyz(session, victim_port)
        exit_code = await asyncio.to_thread(stack.wait_exit, VICTIM)
        exited = time.monotonic() - signalled
        await asyncio.to_thread(stack.restart, VICTIM, 30)
        restarted = time.monotonic()
        # nginx tries a server that refused a connection again after its fail_timeout
        # (10 s): the load goes on, light, until the restarted replica served again.
        rejoined = await eventually(
            lambda: _served_again(session, victim_port), timeout=20, interval=0.2
        )
        rejoin_seconds = time.monotonic() - restarted
        await rolling.finish()
        after = {port: await served(session, port, ROUTE, "201") for port in ports}

        answers = spread.answers + rolling.answers + direct
        answered = [a.client_id for a in answers if a.client_id]
        assert await eventually(lambda: _all_announced(events, answered), timeout=15), (
            f"{len(set(answered) - set(events.clients))} clients answered 201 without their event"
        )

    statuses = spread.statuses() + rolling.statuses()
    report = {
        "requests through the gateway": len(spread.answers) + len(rolling.answers),
        "statuses": dict(statuses),
        "share before the restart (201s per replica)": shares,
        "share during the rolling phase": {
            port: after[port] - before[port] + (victim_before_sigterm if port == victim_port else 0)
            for port in ports
        },
        "flag off obeyed by every replica after (s)": round(off_seconds, 3),
        "victim readyz right after SIGTERM": readiness,
        "victim exit status, seconds after SIGTERM": (exit_code, round(exited, 2)),
        "victim served again after restart (s)": round(rejoin_seconds, 2),
        "events": sum(events.clients.values()),
    }
    print(f"\nscale-out: {report}")
    assert readiness == 503, "readiness did not turn 503 at SIGTERM"
    assert exit_code == 0, f"{VICTIM} exited with {exit_code} (see its log)"
    # Nothing it had accepted waited out the grace period (a request held until then fails).
    assert exited < DRAIN_SECONDS + GRACE_SECONDS / 2, f"{VICTIM} took {exited:.1f} s to exit"
    assert rejoined, f"{VICTIM} never served again after its restart"
    failed = [a for a in spread.answers + rolling.answers if a.status != 201]
    assert not failed, failed[:5]

    # Every client answered 201 is stored exactly once; nothing stored without an answer.
    assert len(answered) == len(set(answered))
    client = open_client(backing.mongodb_url)
    try:
        clients = client[scaled.database][Collections.CLIENTS]
        stored = [
            doc["_id"]
            async for doc in clients.find(
                {"tenant_id": scaled.creds["tenant_id"], "dynamic": True}, {"_id": 1}
            )
        ]
    finally:
        await client.close()
    assert sorted(stored) == sorted(answered)
    duplicated = {client_id for client_id, n in events.clients.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} clients announced twice"


async def _answered(load: Load, n: int) -> bool:
    return len(load.answers) >= n


async def _readyz(session: aiohttp.ClientSession, port: int) -> int:
    """/readyz of a replica that just got SIGTERM (it drains for a second)."""
    await asyncio.sleep(0.1)  # the signal is handled by the replica's event loop
    try:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status
    except aiohttp.ClientError:
        return 0


async def _served_again(session: aiohttp.ClientSession, port: int) -> bool:
    return await served(session, port, ROUTE, "201") > 0


async def _all_announced(events: Seen, answered: list[str]) -> bool:
    return all(events.clients[client_id] > 0 for client_id in answered)


def test_make_run_passes_the_replica_count_to_the_launcher() -> None:
    """`make run REGISTRATION_REPLICAS=3` hands the count to deploy/local/stack.py, whose
    `config_from_env` (what the fixture above builds its stack with) turns it into replicas."""
    root = Path(__file__).resolve().parents[2]
    dry_run = subprocess.run(
        ["make", "-n", "run", "REGISTRATION_REPLICAS=3"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "REGISTRATION_REPLICAS=3" in dry_run and "deploy/local/stack.py run" in dry_run
    config = load_stack_module().config_from_env({"REGISTRATION_REPLICAS": "3"})
    assert config.registration_replicas == 3
    assert config.replica_ports() == [8001, 8011, 8021]
