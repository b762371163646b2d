"""`make bench-propagation`: how fast a settings PATCH reaches a registration replica's gate.

Two measurements, tenant-settings running as its own process in both:

1. Idle, one replica in this process (the real application, with its consumer, Redis cache
   and in-process gate). The flag is toggled N times; for each PATCH we record when the
   response arrived and when the replica's gate first held the new version, and print the
   distribution of the difference (0 when the gate was already updated before the PATCH
   response reached us) and of PATCH-sent-to-gate.

2. Under load: three registration replicas, each its own `python -m registration_service`
   process with its own instance id and port (not pinned: the two cores are shared by all),
   serving registrations at c=16 in all, one wrk per replica (c=6, 5 and 5, all on CPU 1).
   `dynamic_client_registration.rate_limit.requests` is switched between two large values
   (so every registration is still answered 201, which the wrk reports confirm). When each
   replica's gate held each new version is read from the replica's own metrics: the
   consumer records the wall-clock time its gate first held the newest change, from
   whichever queue delivered it first
   (`registration_settings_gate_applied_timestamp_seconds`), next to that change's commit
   time (`registration_settings_newest_change_timestamp_seconds`), on this machine's clock.
   Per replica: p50/p99/max of PATCH sent -> gate (the target: p99 <= 20 ms on every
   replica) and of commit -> gate (the commit time is the one tenant-settings stores, to the
   millisecond, taken just before its database write).

   The write's share: a change reaches no replica before its write is acknowledged (the
   outbox rule), so each PATCH's write, as tenant-settings times it (the database, and the
   client library and event loop on the way), is read from its metrics (the growth of
   `tenant_settings_write_seconds_sum`; one PATCH at a time) and subtracted, per replica:
   written -> gate (up to 1 ms high: the commit time is stored to the millisecond), and
   PATCH sent -> gate less the write. The database's CPU over the changes is printed in
   percent of one core (FerretDB runs Go code on one thread here, deploy/local/ferretdb):
   near 100%, writes queue for that thread; well below it, a slow write waits on something
   that costs the database no CPU: SQLite's one writer per database (the replicas' insert
   batches and their checkpoint syncs) or a turn on the two cores every process shares.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from common import (
    DOMAIN,
    LOADGEN_CPU,
    CpuMeter,
    Result,
    WrkLoad,
    backing_pids,
    bench_settings,
    drop,
    expect_registered,
    free_port,
    management_token,
    new_tenant,
    patch_settings,
    percentiles,
    print_logs,
    python,
    service_env,
    start_process,
    stop_processes,
    wait_ready,
)

from oidc_common.config import Settings
from oidc_common.settings_cache import SettingsSnapshot
from registration_service.app import create_app
from registration_service.resources import GATE

REPLICAS = 3
LOAD_CONCURRENCY = 16
# Two large values: each PATCH is a real change, and no registration is ever refused.
RATE_LIMITS = (99_999, 100_000)
TARGET_P99_MS = 20.0
# A replica's metrics are read this long after each PATCH's response (then every 20 ms).
FIRST_READ_S = 0.05
NEWEST_CHANGE = "registration_settings_newest_change_timestamp_seconds"
GATE_APPLIED = "registration_settings_gate_applied_timestamp_seconds"
WRITE_SECONDS = "tenant_settings_write_seconds_sum"


async def main(toggles: int, load_toggles: int) -> None:
    tag = uuid.uuid4().hex[:10]
    settings = bench_settings("registration", tag)
    tenant_id = await new_tenant(settings, DOMAIN)
    token = await management_token(settings, tenant_id, f"http://{DOMAIN}/")
    port = free_port()
    publisher = start_process(
        [python(), "-m", "tenant_settings_service"], service_env(settings, port, "ts")
    )
    try:
        wait_ready(port)
        if toggles:
            await idle(settings, tenant_id, token, port, toggles)
        if load_toggles:
            await under_load(settings, token, port, load_toggles)
    finally:
        stop_processes([publisher])
        await drop(settings)


async def idle(settings: Settings, tenant_id: str, token: str, port: int, toggles: int) -> None:
    """The first measurement: one replica in this process, nothing else running."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", free_port()).start()
        gate = app[GATE]
        for _ in range(300):  # the consumer binds its queues in the background
            if gate.consuming:
                break
            await asyncio.sleep(0.05)
        seen: dict[int, float] = {}
        waiters: dict[int, asyncio.Event] = {}

        def on_change(snapshot: SettingsSnapshot) -> None:
            seen.setdefault(snapshot.version, time.perf_counter())
            if snapshot.version in waiters:
                waiters[snapshot.version].set()

        gate.on_change(on_change)
        after_response: list[float] = []
        after_request: list[float] = []
        already = 0
        async with aiohttp.ClientSession() as session:
            for i in range(toggles):
                body = {"flags": {"enable_dynamic_client_registration": i % 2 == 0}}
                sent = time.perf_counter()
                version = await patch_settings(session, port, token, body)
                answered = time.perf_counter()
                event = waiters.setdefault(version, asyncio.Event())
                if version in seen:
                    event.set()
                await asyncio.wait_for(event.wait(), timeout=10)
                applied = seen[version]
                if applied <= answered:
                    already += 1
                after_response.append(max(0.0, applied - answered) * 1000)
                after_request.append((applied - sent) * 1000)
                # The gate must now answer with the new flag.
                decision = await gate.decide(tenant_id)
                assert decision.snapshot is not None and decision.snapshot.version >= version
    finally:
        await runner.cleanup()

    print(
        f"settings propagation, {toggles} PATCH toggles, tenant-settings process -> "
        "RabbitMQ -> registration replica (other process) gate"
    )
    for label, samples in (
        ("PATCH response -> gate updated", after_response),
        ("PATCH sent -> gate updated", after_request),
    ):
        print(f"  {label:32s} {_distribution(samples)}")
    print(f"  gate already updated when the PATCH response arrived: {already}/{toggles}")


def _distribution(samples_ms: list[float]) -> str:
    p = percentiles(samples_ms)
    return (
        f"p50 {p['p50']:7.2f} ms  p95 {p['p95']:7.2f} ms  p99 {p['p99']:7.2f} ms  "
        f"max {p['max']:7.2f} ms"
    )


@dataclass(frozen=True)
class Scrape:
    """What one replica's /metrics says about the settings changes it has received."""

    newest_change: float
    gate_applied: float


def metric_values(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """The unlabelled samples called `names` in a Prometheus text exposition."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            values[name] = float(value)
    return values


def parse_scrape(text: str) -> Scrape:
    values = metric_values(text, (NEWEST_CHANGE, GATE_APPLIED))
    return Scrape(values[NEWEST_CHANGE], values[GATE_APPLIED])


async def scrape(session: aiohttp.ClientSession, port: int) -> Scrape:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        return parse_scrape(await response.text())


async def write_seconds(session: aiohttp.ClientSession, port: int) -> float:
    """tenant-settings' total time in settings writes so far (s)."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        values = metric_values(await response.text(), (WRITE_SECONDS,))
    if WRITE_SECONDS not in values:
        raise RuntimeError(f"tenant-settings exports no {WRITE_SECONDS}")
    return values[WRITE_SECONDS]


@dataclass
class Replica:
    """One registration replica process: its port, last scrape and samples (ms)."""

    name: str
    port: int
    last: Scrape | None = None
    sent_to_gate: list[float] = field(default_factory=list)
    commit_to_gate: list[float] = field(default_factory=list)
    written_to_gate: list[float] = field(default_factory=list)
    sent_to_gate_less_write: list[float] = field(default_factory=list)


async def until_received(
    session: aiohttp.ClientSession, replica: Replica, timeout: float = 10.0
) -> Scrape:
    """The replica's metrics once its consumer has observed one more change.

    The replica records the time itself, so reading it late loses nothing: the first read
    waits FIRST_READ_S, and polling is slow, because a scrape costs the replica CPU (about
    0.7 ms here) that would otherwise serve registrations."""
    assert replica.last is not None
    deadline = time.monotonic() + timeout
    await asyncio.sleep(FIRST_READ_S)
    while True:
        now = await scrape(session, replica.port)
        if now.newest_change > replica.last.newest_change:
            return now
        if time.monotonic() > deadline:
            raise RuntimeError(f"replica {replica.name}: no settings change after {timeout} s")
        await asyncio.sleep(0.02)


async def under_load(settings: Settings, token: str, ts_port: int, toggles: int) -> None:
    """The second measurement: three replica processes serving registrations at c=16."""
    state = Path(tempfile.mkdtemp(prefix="dcr-bench-propagation-"))
    replicas = [Replica(f"r{i + 1}", free_port()) for i in range(REPLICAS)]
    processes: list[subprocess.Popen[bytes]] = [
        start_process(
            [python(), "-m", "registration_service"],
            service_env(settings, replica.port, f"bench-{replica.name}"),
            log=state / f"{replica.name}.log",
        )
        for replica in replicas
    ]
    loads: list[WrkLoad] = []
    load: list[Result] = []
    writes: list[float] = []  # each PATCH's database write (ms)
    database_cpu = 0.0  # percent of one core, over the changes
    try:
        for replica in replicas:
            wait_ready(replica.port)
        async with aiohttp.ClientSession() as session:
            await patch_settings(
                session,
                ts_port,
                token,
                {
                    "flags": {"enable_dynamic_client_registration": True},
                    "dynamic_client_registration": {
                        "rate_limit": {"requests": RATE_LIMITS[1], "window_seconds": 1},
                        "max_clients": 1_000_000,
                    },
                },
            )
            for replica in replicas:  # every replica has the change and registers
                for _ in range(200):
                    replica.last = await scrape(session, replica.port)
                    if replica.last.newest_change:
                        break
                    await asyncio.sleep(0.05)
                expect_registered(replica.port)
            # c=16 split as evenly as wrk allows: 6, 5, 5.
            shares = [
                LOAD_CONCURRENCY // REPLICAS + (i < LOAD_CONCURRENCY % REPLICAS)
                for i in range(REPLICAS)
            ]
            loads = [
                WrkLoad(replica.name, f"http://127.0.0.1:{replica.port}/oidc/register", c)
                for replica, c in zip(replicas, shares, strict=True)
            ]
            await asyncio.sleep(1.0)  # the load is established before the first change
            written = await write_seconds(session, ts_port)
            meter = CpuMeter({"database": backing_pids()["ferretdb"]})
            meter.start()
            for i in range(toggles):
                body = {
                    "dynamic_client_registration": {"rate_limit": {"requests": RATE_LIMITS[i % 2]}}
                }
                sent = time.time()
                await patch_settings(session, ts_port, token, body)
                await asyncio.gather(*(record(session, r, sent) for r in replicas))
                written, before = await write_seconds(session, ts_port), written
                writes.append((written - before) * 1000)
                for replica in replicas:
                    replica.written_to_gate.append(replica.commit_to_gate[-1] - writes[-1])
                    replica.sent_to_gate_less_write.append(replica.sent_to_gate[-1] - writes[-1])
            database_cpu = meter.stop().groups["database"]
            load = [wrk_load.stop() for wrk_load in loads]
            loads = []
    finally:
        for wrk_load in loads:
            wrk_load.stop()
        stop_processes(processes)
        print_logs(state / f"{replica.name}.log" for replica in replicas)
        shutil.rmtree(state, ignore_errors=True)
    report(replicas, load, toggles, writes, database_cpu)


async def record(session: aiohttp.ClientSession, replica: Replica, sent: float) -> None:
    """When this replica's gate held the change just PATCHed (sent at `sent`)."""
    now = await until_received(session, replica)
    # Changes are PATCHed one at a time, each awaited on every replica: the newest change is
    # this one, and the gate held it at `gate_applied` (the replica's clock is this machine's).
    replica.sent_to_gate.append((now.gate_applied - sent) * 1000)
    replica.commit_to_gate.append((now.gate_applied - now.newest_change) * 1000)
    replica.last = now


def report(
    replicas: list[Replica],
    load: list[Result],
    toggles: int,
    writes: list[float],
    database_cpu: float,
) -> None:
    print(
        f"\nsettings propagation under load: {REPLICAS} registration replicas (separate "
        f"processes, not pinned), registrations at c={LOAD_CONCURRENCY} in all (one wrk per "
        f"replica, c={'/'.join(str(r.concurrency) for r in load)}, on CPU {LOADGEN_CPU}); "
        f"{toggles} PATCHes switching dynamic_client_registration.rate_limit.requests between "
        f"{RATE_LIMITS[0]} and {RATE_LIMITS[1]}"
    )
    total = sum(r.requests for r in load)
    failed = sum(r.non_2xx for r in load)
    rates = ", ".join(f"{r.name} {r.rps:.0f}" for r in load)
    print(
        f"  registrations meanwhile: {sum(r.rps for r in load):.0f} req/s ({rates}); "
        f"{total - failed} answered 2xx, {failed} other"
    )
    if len(writes) >= 2:
        print(
            f"  settings write, as tenant-settings times it {_distribution(writes)}; database CPU "
            f"{database_cpu:.0f}% of one core"
        )
    worst: tuple[float, str] = (0.0, "")
    worst_less_write = 0.0
    for replica in replicas:
        if len(replica.sent_to_gate) < 2:
            print(f"  {replica.name}: too few samples ({len(replica.sent_to_gate)})")
            worst = max(worst, (float("inf"), replica.name))
            continue
        print(f"  {replica.name} PATCH sent -> gate    {_distribution(replica.sent_to_gate)}")
        print(f"  {replica.name} commit -> gate        {_distribution(replica.commit_to_gate)}")
        print(f"  {replica.name} written -> gate       {_distribution(replica.written_to_gate)}")
        worst = max(worst, (percentiles(replica.sent_to_gate)["p99"], replica.name))
        less_write = percentiles(replica.sent_to_gate_less_write)["p99"]
        worst_less_write = max(worst_less_write, less_write)
    met = "met" if worst[0] <= TARGET_P99_MS else "NOT met"
    print(
        f"  target: PATCH sent -> gate p99 <= {TARGET_P99_MS:.0f} ms on every replica: {met} "
        f"(worst {worst[1]}, p99 {worst[0]:.2f} ms; less each change's settings write, the "
        f"worst p99 is {worst_less_write:.2f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--toggles", type=int, default=200, help="idle, one replica (0: skip)")
    parser.add_argument(
        "--load-toggles", type=int, default=200, help="under load, three replicas (0: skip)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk") and args.load_toggles:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    asyncio.run(main(args.toggles, args.load_toggles))
