"""`make bench-propagation`: how fast a settings PATCH reaches a registration replica's gate.

tenant-settings runs as its own process; a registration replica (the real application, with
its consumer, Redis cache and in-process gate) runs in this process. The flag is toggled
N times; for each PATCH we record when the response arrived and when the replica's gate
first held the new version, and print the distribution of the difference (0 when the gate
was already updated before the PATCH response reached us) and of PATCH-sent-to-gate.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import aiohttp
from aiohttp import web
from common import (
    bench_settings,
    drop,
    free_port,
    management_token,
    new_tenant,
    percentiles,
    python,
    service_env,
    start_process,
    wait_ready,
)

from oidc_common.settings_cache import SettingsSnapshot
from registration_service.app import create_app
from registration_service.resources import GATE

DOMAIN = "bench.example"


async def main(toggles: int) -> None:
    tag = uuid.uuid4().hex[:10]
    settings = bench_settings("registration", tag)
    tenant_id = await new_tenant(settings, DOMAIN)
    token = await management_token(settings, tenant_id, f"http://{DOMAIN}/")
    port = free_port()
    publisher = start_process(
        [python(), "-m", "tenant_settings_service"], service_env(settings, port, "ts")
    )
    runner: web.AppRunner | None = None
    try:
        wait_ready(port)
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
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
        headers = {"Host": DOMAIN, "Authorization": f"Bearer {token}"}
        after_response: list[float] = []
        after_request: list[float] = []
        already = 0
        async with aiohttp.ClientSession() as session:
            for i in range(toggles):
                body = {"flags": {"enable_dynamic_client_registration": i % 2 == 0}}
                sent = time.perf_counter()
                async with session.patch(
                    f"http://127.0.0.1:{port}/api/v2/tenants/settings", json=body, headers=headers
                ) as response:
                    assert response.status == 200, await response.text()
                    version = (await response.json())["version"]
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
        if runner is not None:
            await runner.cleanup()
        publisher.terminate()
        publisher.wait(10)
        await drop(settings)

    print(
        f"settings propagation, {toggles} PATCH toggles, tenant-settings process -> "
        "RabbitMQ -> registration replica (other process) gate"
    )
    for label, samples in (
        ("PATCH response -> gate updated", after_response),
        ("PATCH sent -> gate updated", after_request),
    ):
        p = percentiles(samples)
        print(
            f"  {label:32s} p50 {p['p50']:7.2f} ms  p95 {p['p95']:7.2f} ms  "
            f"p99 {p['p99']:7.2f} ms  max {p['max']:7.2f} ms"
        )
    print(f"  gate already updated when the PATCH response arrived: {already}/{toggles}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--toggles", type=int, default=200)
    asyncio.run(main(parser.parse_args().toggles))
