"""`make bench-ab A=REV B=REV`: registration at two revisions, measured side by side in time.

This VM's speed drifts by ±15% within minutes and by more over tens of minutes, so two
`make bench` runs of different code taken one after the other compare the machine as much
as the code. Here both revisions serve at once: one registration process each (from its
own source tree: a git worktree under `.local/ab/`, or the working tree for `B=`), both
pinned to the same CPU and idle except when measured, against one tenant-settings, the same
backing services and the same tenant. wrk runs alternate between them (A first, then B
first, ...) for `--rounds` rounds of `--seconds` seconds at `--concurrency`, and the report
gives each side's medians and B÷A per round: a change is real when the per-round ratios
agree, not when one pair of runs differs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from common import (
    DOMAIN,
    OPEN_POLICY,
    ROOT,
    SERVER_CPU,
    CpuMeter,
    Result,
    backing_pids,
    bench_settings,
    drop,
    expect_registered,
    free_port,
    management_token,
    new_tenant,
    print_logs,
    python,
    service_env,
    set_settings,
    start_process,
    stop_processes,
    wait_ready,
    wrk,
)

WORKTREES = ROOT / ".local" / "ab"
SOURCE_DIRS = ("shared/src", *(f"services/{s}/src" for s in ("registration", "tenant-settings")))


def source_tree(revision: str) -> Path:
    """The working tree for '' (uncommitted changes included), else a detached worktree of
    `revision` under .local/ab/ (made once per commit)."""
    if not revision:
        return ROOT
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        sys.exit(f"bench-ab: {revision!r} is not a commit of this repository")
    sha = commit.stdout.strip()
    tree = WORKTREES / sha[:12]
    if not tree.exists():
        WORKTREES.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", "-q", str(tree), sha],
            check=True,
        )
    return tree


def tree_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    """`env` with `tree`'s packages first on the import path (ahead of the installed ones)."""
    return {**env, "PYTHONPATH": os.pathsep.join(str(tree / d) for d in SOURCE_DIRS)}


def summary(label: str, runs: list[Result]) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    return (
        f"{label} median: {med([r.rps for r in runs]):6.0f} req/s  "
        f"p99 {med([r.p99_ms for r in runs]):6.1f} ms  "
        f"server {med([r.server_us for r in runs]):4.0f} µs  "
        f"database {med([r.us('ferretdb') for r in runs]):4.0f} µs  "
        f"machine {med([r.machine_us for r in runs]):5.0f} µs"
    )


def per_round(label: str, ratios: list[float]) -> str:
    listed = " ".join(f"{r:.2f}" for r in ratios)
    return f"B÷A {label:22s} per round: {listed}   median {statistics.median(ratios):.3f}"


async def main(a: str, b: str, rounds: int, seconds: int, concurrency: int) -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench-ab does it)")
    trees = {"A": source_tree(a), "B": source_tree(b)}
    for side, revision in (("A", a), ("B", b)):
        print(f"{side}: {revision or 'the working tree'} ({trees[side]})")
    tag = uuid.uuid4().hex[:10]
    settings = bench_settings("registration", tag)
    tenant_id = await new_tenant(settings, DOMAIN)
    token = await management_token(settings, tenant_id, f"http://{DOMAIN}/")
    state = Path(tempfile.mkdtemp(prefix="dcr-bench-ab-"))
    processes: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[Result]] = {"A": [], "B": []}
    try:
        ts_port = free_port()
        processes.append(
            start_process(
                [python(), "-m", "tenant_settings_service"],
                service_env(settings, ts_port, "ts"),
                log=state / "tenant-settings.log",
            )
        )
        servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        for side, tree in trees.items():
            port = free_port()
            env = tree_env(service_env(settings, port, f"ab-{side}"), tree)
            process = start_process(
                [python(), "-m", "registration_service"], env, SERVER_CPU, log=state / f"{side}.log"
            )
            processes.append(process)
            servers[side] = (port, process)
        wait_ready(ts_port)
        for port, _ in servers.values():
            wait_ready(port)
        await asyncio.sleep(1.0)
        await set_settings(ts_port, token, OPEN_POLICY)
        await asyncio.sleep(0.5)
        backing = backing_pids()
        urls = {
            side: f"http://127.0.0.1:{port}/oidc/register" for side, (port, _) in servers.items()
        }
        for side, (port, _) in servers.items():
            expect_registered(port)
            wrk(side, urls[side], 4, 2)  # warm-up
        print(f"\n{rounds} rounds of {seconds} s at c={concurrency}, alternating:", flush=True)
        for round_ in range(rounds):
            for side in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                meter = CpuMeter({"server": [servers[side][1].pid], **backing})
                result = wrk(side, urls[side], concurrency, seconds, meter)
                runs[side].append(result)
                print(
                    f"  round {round_ + 1:2d} {side}: {result.rps:6.0f} req/s  p99 "
                    f"{result.p99_ms:6.1f} ms  server {result.server_us:4.0f} µs  machine "
                    f"{result.machine_us:5.0f} µs  {result.statuses}",
                    flush=True,
                )
    finally:
        stop_processes(processes)
        await drop(settings)
        print_logs([state / "A.log", state / "B.log"])
        shutil.rmtree(state, ignore_errors=True)
    pairs = list(zip(runs["A"], runs["B"], strict=True))
    print()
    print(summary("A", runs["A"]))
    print(summary("B", runs["B"]))
    print(per_round("req/s", [b.rps / a.rps for a, b in pairs if a.rps]))
    print(
        per_round(
            "server µs/registration", [b.server_us / a.server_us for a, b in pairs if a.server_us]
        )
    )
    print(
        per_round(
            "machine µs/registration",
            [b.machine_us / a.machine_us for a, b in pairs if a.machine_us],
        )
    )
    if any(r.non_2xx for r in [*runs["A"], *runs["B"]]):
        print("WARNING: some requests were not answered 2xx; the figures are not comparable")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a", default="HEAD", help="revision A (default HEAD)")
    parser.add_argument("--b", default="", help="revision B (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.a, args.b, args.rounds, args.seconds, args.concurrency))
