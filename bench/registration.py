"""`make bench`: registration throughput and latency, next to a bare-aiohttp baseline.

Runs, in one go and with the same load generator (wrk, one thread):
  baseline             a bare aiohttp handler that parses the body and returns ids (the
                       better of two runs at each concurrency)
  register direct      one registration process, every client persisted to the database
  register gateway     the same, through the nginx gateway
  rejected direct      registration off: the 403 path
  rejected gateway     the same, through the gateway
each at concurrency 1, 16 and 64; then a CPU profile of the registration process under load
at concurrency 16 (py-spy, grouped by component), and the database ceiling (raw inserts of
the same documents into a collection with the clients' indexes, and the database's CPU per
document). The server process is pinned to CPU 0 and wrk to CPU 1 (`taskset -c`); nginx
runs one worker on CPU 1; the backing services are not pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from common import (
    DOMAIN,
    HERE,
    LOADGEN_CPU,
    SERVER_CPU,
    CpuMeter,
    Result,
    bench_settings,
    children,
    cpu_seconds,
    drop,
    free_port,
    load_stack,
    management_token,
    new_tenant,
    pids_of,
    python,
    requests_per_second,
    result_row,
    service_env,
    start_process,
    stop_processes,
    wait_ready,
    wrk,
)
from cpu_profile import Profile, py_spy

from oidc_common.config import Settings
from oidc_common.mongo import INDEXES, Collections, open_client

# The target: at concurrency 16, this share of the baseline's requests/s, and p99.
TARGET_CONCURRENCY = 16
TARGET_RATIO = 0.35
TARGET_P99_MS = 25.0
STACK = load_stack()


def start_gateway(upstream_port: int, state: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The same nginx gateway `make run` starts (deploy/local/stack.py), pinned to CPU 1."""
    config = STACK.StackConfig(
        state=state,
        gateway_port=free_port(),
        ports={
            "registration": upstream_port,
            "authorize": free_port(),
            "tenant-settings": free_port(),
        },
    )
    stack = STACK.Stack(config)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    stack.start_gateway()
    _, process = stack.processes[-1]
    subprocess.run(
        ["taskset", "-a", "-p", "-c", str(LOADGEN_CPU), str(process.pid)],
        check=True,
        capture_output=True,
    )
    return process, config.gateway_port


async def set_settings(port: int, token: str, body: dict[str, object]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"http://127.0.0.1:{port}/api/v2/tenants/settings",
            json=body,
            headers={"Host": DOMAIN, "Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def main(seconds: int, concurrencies: list[int], profile: bool) -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    tag = uuid.uuid4().hex[:10]
    print(
        f"registration throughput: server pinned to CPU {SERVER_CPU}, wrk (1 thread) and the "
        f"nginx gateway to CPU {LOADGEN_CPU} (taskset -c); backing services not pinned; "
        f"{seconds} s per run",
        flush=True,
    )
    settings = bench_settings("registration", tag)
    tenant_id = await new_tenant(settings, DOMAIN)
    token = await management_token(settings, tenant_id, f"http://{DOMAIN}/")
    state = Path(tempfile.mkdtemp(prefix="dcr-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    results: list[Result] = []
    try:
        base_port = free_port()
        baseline = start_process(
            [python(), str(HERE / "baseline_server.py"), str(base_port)],
            dict(os.environ),
            SERVER_CPU,
        )
        processes.append(baseline)
        ts_port, reg_port = free_port(), free_port()
        processes.append(
            start_process(
                [python(), "-m", "tenant_settings_service"],
                service_env(settings, ts_port, "ts"),
                log=state / "tenant-settings.log",
            )
        )
        registration = start_process(
            [python(), "-m", "registration_service"],
            service_env(settings, reg_port, "bench"),
            SERVER_CPU,
            log=state / "registration.log",
        )
        processes.append(registration)
        gateway, gw_port = start_gateway(reg_port, state)
        processes.append(gateway)
        wait_ready(ts_port)
        wait_ready(reg_port)
        await asyncio.sleep(1.0)
        await set_settings(
            ts_port,
            token,
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {
                    "rate_limit": {"requests": 100_000, "window_seconds": 1},
                    "max_clients": 1_000_000,
                },
            },
        )
        await asyncio.sleep(0.5)
        backing = {
            "ferretdb": pids_of("bin/ferretdb"),
            "redis": pids_of("redis-server"),
            "rabbitmq": pids_of("beam.smp"),
            "nginx": [gateway.pid, *children(gateway.pid)],
        }
        baseline_meter = CpuMeter({"server": [baseline.pid], **backing})
        meter = CpuMeter({"server": [registration.pid], **backing})
        runs = [
            ("baseline (bare aiohttp)", base_port, baseline_meter),
            ("register, direct", reg_port, meter),
            ("register, via gateway", gw_port, meter),
        ]
        for name, port, run_meter in runs:
            wrk(name, f"http://127.0.0.1:{port}/oidc/register", 4, 2)  # warm-up
            for c in concurrencies:
                url = f"http://127.0.0.1:{port}/oidc/register"
                result = wrk(name, url, c, seconds, run_meter)
                if run_meter is baseline_meter:
                    # A shared machine only ever slows a run down: the better of two runs is
                    # the baseline's capacity (and the stricter yardstick for the others).
                    result = max(
                        result, wrk(name, url, c, seconds, run_meter), key=requests_per_second
                    )
                results.append(result)
                print(result_row(results[-1]), flush=True)
        if profile:
            profile_server(registration.pid, reg_port, seconds)
        await set_settings(ts_port, token, {"flags": {"enable_dynamic_client_registration": False}})
        await asyncio.sleep(0.5)
        for name, port in [
            ("rejected (flag off), direct", reg_port),
            ("rejected (flag off), via gateway", gw_port),
        ]:
            for c in concurrencies:
                url = f"http://127.0.0.1:{port}/oidc/register"
                results.append(wrk(name, url, c, seconds, meter))
                print(result_row(results[-1]), flush=True)
        ceiling = await database_ceiling(settings)
    finally:
        stop_processes(processes)
        await drop(settings)
        log = state / "registration.log"
        if log.exists() and log.stat().st_size:
            print(f"registration log (last lines):\n{log.read_text()[-2000:]}")
        shutil.rmtree(state, ignore_errors=True)

    baseline = {r.concurrency: r.rps for r in results if r.name.startswith("baseline")}
    print("\nratio to the baseline at the same concurrency:")
    for r in results:
        if not r.name.startswith("baseline"):
            ratio = 100 * r.rps / baseline[r.concurrency]
            print(f"  {r.name:34s} c={r.concurrency:<3d} {ratio:5.1f}%")
    verdict(results, baseline, ceiling)


def profile_server(pid: int, port: int, seconds: int) -> None:
    executable = py_spy()
    if executable is None:
        print("\n(no CPU profile: py-spy is not installed; `make install` brings it)")
        return
    recording = Profile(executable, pid, seconds, LOADGEN_CPU)
    time.sleep(0.5)  # py-spy attached before the load starts
    url = f"http://127.0.0.1:{port}/oidc/register"
    run = wrk("profiled", url, TARGET_CONCURRENCY, seconds)
    try:
        shares = recording.breakdown()
    except RuntimeError as exc:
        print(f"\n(no CPU profile: {exc})")
        return
    print(
        f"\nregistration process CPU profile, register direct c={TARGET_CONCURRENCY} "
        f"(py-spy; {run.rps:.0f} req/s while sampled):"
    )
    for name, share in shares:
        if share >= 0.5:
            print(f"  {share:5.1f}%  {name}")


def verdict(results: list[Result], baseline: dict[int, float], ceiling: float) -> None:
    """The target, what was measured, and what the database alone allows on this machine."""
    base = baseline.get(TARGET_CONCURRENCY)
    direct = next(
        (
            r
            for r in results
            if r.name == "register, direct" and r.concurrency == TARGET_CONCURRENCY
        ),
        None,
    )
    if base is None or direct is None:
        return
    target = TARGET_RATIO * base
    print(
        f"\ntarget at c={TARGET_CONCURRENCY}: {target:.0f} req/s ({100 * TARGET_RATIO:.0f}% of "
        f"{base:.0f}) with p99 < {TARGET_P99_MS:.0f} ms; measured {direct.rps:.0f} req/s "
        f"({100 * direct.rps / base:.1f}%), p99 {direct.p99_ms:.1f} ms"
    )
    server_us = per_request_us(direct.cpu.get("server", 0.0), direct.rps)
    db_us = per_request_us(direct.cpu.get("ferretdb", 0.0), direct.rps)
    print(
        f"  CPU per registration: server {server_us:.0f} us, database {db_us:.0f} us; "
        f"database alone, batches of 16, no service in front: {ceiling:.0f} docs/s"
    )
    if server_us:
        print(
            f"  at {server_us:.0f} us per registration the server's one core holds at most "
            f"{1e6 / server_us:.0f} req/s; the machine's two cores, shared with the database "
            f"({db_us:.0f} us), at most {2e6 / (server_us + db_us):.0f} req/s"
        )
    if ceiling < target:
        print(
            f"  the database's own insert ceiling ({ceiling:.0f} docs/s) is below the target "
            f"rate: no registration service in front of it can reach the target here"
        )


def per_request_us(cpu_percent: float, rps: float) -> float:
    # 1% of one core for one second is 10 ms of CPU time.
    return cpu_percent * 10_000 / rps if rps else 0.0


async def database_ceiling(settings: Settings) -> float:
    """What the database alone sustains for the same documents: the backing-service ceiling.

    Returns the documents per second in batches of 16 (the service's group commit)."""
    client = open_client(settings.mongodb_url)
    collection = client[settings.mongodb_database]["ceiling"]
    for index in INDEXES[Collections.CLIENTS]:  # the same index upkeep as the clients
        await collection.create_indexes([index])
    database = pids_of("bin/ferretdb") or pids_of("mongod")
    print("\ndatabase ceiling (client documents, the clients' indexes, no service in front):")
    rate = 0.0
    try:
        for batch, total in ((1, 1000), (16, 4000)):
            before, started = cpu_seconds(database), time.perf_counter()
            for _ in range(total // batch):
                await collection.insert_many([_client_document() for _ in range(batch)])
            elapsed = time.perf_counter() - started
            rate = total / elapsed
            per_doc_us = 1e6 * (cpu_seconds(database) - before) / total
            print(
                f"  insert batches of {batch:2d}: {total / elapsed:6.0f} docs/s, "
                f"database CPU {per_doc_us:5.0f} us per document"
            )
    finally:
        await client.close()
    return rate


def _client_document() -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    metadata = {
        "redirect_uris": ["https://application.example.com/callback"],
        "client_name": "My Dynamic Application",
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "application_type": "web",
    }
    return {
        "_id": secrets.token_hex(16),
        "tenant_id": "ten_ceiling",
        "dynamic": True,
        "client_secret_hash": "sha256$" + "a" * 64,
        **metadata,
        "metadata": metadata,
        "created_at": now,
        "last_used_at": None,
        "reaped_at": None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, args.profile))
