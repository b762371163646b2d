"""What the benchmarks share: an isolated tenant, processes, percentiles, a management token."""

from __future__ import annotations

import importlib
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from authorize_service.access_tokens import mint_access_token
from authorize_service.keystore import KeyStore
from oidc_common.config import Settings
from oidc_common.mongo import open_client
from tenant_settings_service.bootstrap import create_tenant

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench"
DOMAIN = "bench.example"
SERVER_CPU = 0
LOADGEN_CPU = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_settings(service: str, tag: str) -> Settings:
    """Backing URLs from the environment (`make bench` sets them), state isolated by `tag`."""
    return Settings(
        service_name=service,
        mongodb_url=os.environ["MONGODB_URL"],
        mongodb_database=f"bench_{tag}",
        redis_url=os.environ["REDIS_URL"],
        redis_prefix=f"bench_{tag}:",
        rabbitmq_url=os.environ["RABBITMQ_URL"],
        events_exchange=f"oidc.events.bench_{tag}",
        key_encryption_key=os.urandom(32),
        access_log=False,
        log_level="WARNING",
    )


def service_env(settings: Settings, port: int, instance: str = "") -> dict[str, str]:
    quiet = replace(
        settings, port=port, instance_id=instance, log_level="WARNING", access_log=False
    )
    return {**os.environ, **quiet.to_env()}


def start_process(
    args: list[str], env: dict[str, str], cpu: int | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server (pinned to `cpu`); its output goes to `log`, never to a pipe nobody
    reads (a full pipe would block the server mid-benchmark)."""
    command = (["taskset", "-c", str(cpu)] if cpu is not None else []) + args
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each (killing one that will not stop)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_ready(port: int, path: str = "/readyz", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing ready on port {port}{path} after {timeout} s")


async def new_tenant(settings: Settings, domain: str) -> str:
    client = open_client(settings.mongodb_url)
    try:
        assert settings.key_encryption_key is not None
        result = await create_tenant(
            client[settings.mongodb_database], domain, settings.key_encryption_key
        )
    finally:
        await client.close()
    return result.tenant_id


async def management_token(settings: Settings, tenant_id: str, issuer: str) -> str:
    """A Management API token signed exactly as the authorize service signs one."""
    client = open_client(settings.mongodb_url)
    try:
        key = await KeyStore(client[settings.mongodb_database], settings).signing_key(tenant_id)
    finally:
        await client.close()
    return mint_access_token(
        key,
        issuer=issuer,
        audience=f"{issuer}api/v2/",
        client_id="bench",
        scopes=["read:tenant_settings", "update:tenant_settings"],
        ttl=3600,
    ).token


async def drop(settings: Settings) -> None:
    client = open_client(settings.mongodb_url)
    await client.drop_database(settings.mongodb_database)
    await client.close()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1]}


def load_stack() -> ModuleType:
    """deploy/local/stack.py, the launcher `make run` uses (a script on the path, not a package)."""
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    return importlib.import_module("stack")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pids_of(pattern: str) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", pattern], capture_output=True, text=True, check=False
    ).stdout.split()
    return [int(pid) for pid in found]


def children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


class CpuMeter:
    """Where the CPU goes during one run: the profile that shows which process limits it."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pids) for name, pids in self._groups.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        return {
            name: 100 * (cpu_seconds(pids) - self._start[name]) / elapsed
            for name, pids in self._groups.items()
        }


def python() -> str:
    return sys.executable


@dataclass
class Result:
    name: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: str
    cpu: dict[str, float] = field(default_factory=dict)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    name: str,
    url: str,
    concurrency: int,
    seconds: int,
    meter: CpuMeter | None = None,
    script: str = "register.lua",
    env: dict[str, str] | None = None,
) -> Result:
    """One wrk run (one thread, pinned to LOADGEN_CPU) of bench/`script` against `url`."""
    if meter:
        meter.start()
    out = subprocess.run(
        [
            "taskset",
            "-c",
            str(LOADGEN_CPU),
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"BENCH_HOST": DOMAIN, **(env or {})},
    ).stdout
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        distribution = out.split("Latency Distribution", 1)[1]
        p50 = _ms(re.search(r"50%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"99%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
    except (AttributeError, IndexError) as exc:
        raise RuntimeError(f"cannot read wrk's output for {name} c={concurrency}:\n{out}") from exc
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    cpu = meter.stop() if meter else {}
    return Result(name, concurrency, rps, p50, p99, f"{total - errors} 2xx, {errors} other", cpu)


def requests_per_second(result: Result) -> float:
    return result.rps


def result_row(r: Result) -> str:
    cpu = " ".join(f"{name} {value:.0f}%" for name, value in r.cpu.items() if value >= 1)
    return (
        f"{r.name:34s} c={r.concurrency:<3d} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
        f"p99 {r.p99_ms:7.2f} ms  {r.statuses}  cpu: {cpu}"
    )
