"""What the benchmarks share: an isolated tenant, processes, percentiles, a management token."""

from __future__ import annotations

import datetime as dt
import http.client
import importlib
import json
import os
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import aiohttp

from authorize_service.keystore import KeyStore
from authorize_service.tokens.access_tokens import mint_access_token
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


def print_logs(logs: Iterable[Path]) -> None:
    """The end of each log a server wrote (they log warnings and errors only)."""
    for log in logs:
        if log.exists() and log.stat().st_size:
            print(f"{log.name} (last lines):\n{log.read_text()[-2000:]}")


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


def register_body() -> bytes:
    """The registration body wrk sends, read from bench/register.lua (one source for both)."""
    script = (HERE / "register.lua").read_text()
    found = re.search(r"^wrk\.body = '(.*)'$", script, re.MULTILINE)
    if found is None:
        raise RuntimeError("bench/register.lua: no `wrk.body = '...'` line")
    return found.group(1).encode()


def expect_registered(port: int, path: str = "/oidc/register") -> dict[str, object]:
    """POST wrk's registration request once to `port`; the client it answers with, or an
    error unless it is a 201 with a client_id (a server that rejects the request would
    otherwise be measured answering errors)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            path,
            body=register_body(),
            headers={"Host": DOMAIN, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    client = json.loads(body) if body.startswith(b"{") else {}
    if status != 201 or "client_id" not in client:
        raise RuntimeError(
            f"port {port} {path} answered wrk's registration request with {status}: {body!r}"
        )
    return dict(client)


# Registration open to every request wrk sends: no rate limit or client cap in the way.
OPEN_POLICY: dict[str, object] = {
    "flags": {"enable_dynamic_client_registration": True},
    "dynamic_client_registration": {
        "rate_limit": {"requests": 100_000, "window_seconds": 1},
        "max_clients": 1_000_000,
    },
}


async def patch_settings(
    session: aiohttp.ClientSession, port: int, token: str, body: Mapping[str, object]
) -> int:
    """PATCH the bench tenant's settings on tenant-settings at `port`; asserts a 200 and
    returns the new settings version."""
    async with session.patch(
        f"http://127.0.0.1:{port}/api/v2/tenants/settings",
        json=body,
        headers={"Host": DOMAIN, "Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()
        version: int = (await response.json())["version"]
        return version


async def set_settings(port: int, token: str, body: Mapping[str, object]) -> None:
    """`patch_settings` on a session of its own."""
    async with aiohttp.ClientSession() as session:
        await patch_settings(session, port, token, body)


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


def backing_pids() -> dict[str, list[int]]:
    """The backing services' processes by name, as CpuMeter groups."""
    return {
        "ferretdb": pids_of("bin/ferretdb"),
        "redis": pids_of("redis-server"),
        "rabbitmq": pids_of("beam.smp"),
    }


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


def machine_busy_seconds() -> float:
    """CPU time the whole machine (every process, every core) has been busy so far."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    ticks = [int(v) for v in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


@dataclass
class CpuShare:
    """CPU used during one run, in percent of one core: per process group, and the machine."""

    groups: dict[str, float]
    machine: float


class CpuMeter:
    """Where the CPU goes during one run: the profile that shows which process limits it.

    The groups are the processes that serve the request (the server and the backing services
    it uses); the machine's total is read too, so that CPU nobody here accounts for (another
    benchmark on the same machine) shows up instead of hiding in the figures."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._start: dict[str, float] = {}
        self._machine = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine = machine_busy_seconds()
        self._start = {name: cpu_seconds(pids) for name, pids in self._groups.items()}

    def stop(self) -> CpuShare:
        elapsed = time.monotonic() - self._t0
        groups = {
            name: 100 * (cpu_seconds(pids) - self._start[name]) / elapsed
            for name, pids in self._groups.items()
        }
        return CpuShare(groups, 100 * (machine_busy_seconds() - self._machine) / elapsed)


def python() -> str:
    return sys.executable


def us_per_request(cpu_percent: float, rps: float) -> float:
    """CPU time per request, in µs, of a process using `cpu_percent` of one core at `rps`."""
    # 1% of one core for one second is 10 ms of CPU time.
    return cpu_percent * 10_000 / rps if rps else 0.0


@dataclass
class Result:
    """One wrk run: throughput, latency, status counts and the CPU it cost.

    `cpu` holds the process groups that serve the request (percent of one core), `loadgen`
    wrk's own CPU, `other` what the rest of the machine used meanwhile (other processes,
    interrupts; near 0 on a quiet machine)."""

    name: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    cpu: dict[str, float] = field(default_factory=dict)
    loadgen: float = 0.0
    other: float = 0.0

    @property
    def statuses(self) -> str:
        return f"{self.requests - self.non_2xx} 2xx, {self.non_2xx} other"

    def us(self, group: str) -> float:
        """µs of `group`'s CPU per request."""
        return us_per_request(self.cpu.get(group, 0.0), self.rps)

    @property
    def server_us(self) -> float:
        return self.us("server")

    @property
    def machine_us(self) -> float:
        """µs of CPU per request of every process that serves it (server + backing services)."""
        return us_per_request(sum(self.cpu.values()), self.rps)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_command(url: str, concurrency: int, seconds: int, script: str) -> list[str]:
    """wrk with one thread, pinned to LOADGEN_CPU, running bench/`script` against `url`."""
    return [
        *("taskset", "-c", str(LOADGEN_CPU), "wrk", "-t1", f"-c{concurrency}"),
        *(f"-d{seconds}s", "--latency", "-s", str(HERE / script), url),
    ]


def parse_wrk(name: str, concurrency: int, out: str) -> Result:
    """Throughput, p50/p99 and status counts from wrk's report."""
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        distribution = out.split("Latency Distribution", 1)[1]
        p50 = _ms(re.search(r"50%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"99%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    except (AttributeError, IndexError) as exc:
        raise RuntimeError(f"cannot read wrk's output for {name} c={concurrency}:\n{out}") from exc
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    # Socket errors (connect, read, write, timeout) are requests that got no 2xx either.
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return Result(name, concurrency, rps, p50, p99, total, failed)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    name: str,
    url: str,
    concurrency: int,
    seconds: int,
    meter: CpuMeter | None = None,
    script: str = "register.lua",
    env: dict[str, str] | None = None,
) -> Result:
    """One wrk run (one thread, pinned to LOADGEN_CPU) of bench/`script` against `url`; with a
    meter, the CPU of the meter's groups, of wrk itself and of the rest of the machine."""
    # wrk is a child this process waits for: its CPU time is the children's rusage delta.
    loadgen_before = _children_cpu_seconds()
    started = time.monotonic()
    if meter:
        meter.start()
    out = subprocess.run(
        wrk_command(url, concurrency, seconds, script),
        capture_output=True,
        text=True,
        check=True,
        env={"BENCH_HOST": DOMAIN, **(env or {})},
    ).stdout
    share = meter.stop() if meter else None
    result = parse_wrk(name, concurrency, out)
    if share:
        elapsed = time.monotonic() - started
        result.cpu = share.groups
        result.loadgen = 100 * (_children_cpu_seconds() - loadgen_before) / elapsed
        result.other = max(0.0, share.machine - sum(share.groups.values()) - result.loadgen)
    return result


class WrkLoad:
    """wrk in the background for as long as a measurement takes (stopped with SIGINT, on
    which wrk prints its usual report)."""

    def __init__(self, name: str, url: str, concurrency: int, script: str = "register.lua"):
        self.name, self.concurrency = name, concurrency
        # Far longer than any measurement: stop() ends it.
        self._process = subprocess.Popen(
            wrk_command(url, concurrency, 3600, script),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"BENCH_HOST": DOMAIN},
        )

    def stop(self) -> Result:
        self._process.send_signal(signal.SIGINT)
        out, _ = self._process.communicate(timeout=30)
        return parse_wrk(self.name, self.concurrency, out)


def requests_per_second(result: Result) -> float:
    return result.rps


def result_row(r: Result) -> str:
    """One run on one line: throughput, latency, statuses, then CPU per request."""
    cpu = " ".join(f"{name} {value:.0f}%" for name, value in r.cpu.items() if value >= 1)
    line = (
        f"{r.name:34s} c={r.concurrency:<3d} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
        f"p99 {r.p99_ms:7.2f} ms  {r.statuses}"
    )
    if r.cpu:
        line += (
            f"  cpu: {cpu}; per request: server {r.server_us:.0f} µs, "
            f"machine {r.machine_us:.0f} µs (wrk {us_per_request(r.loadgen, r.rps):.0f} µs"
        )
        if r.other >= 5:  # more than scheduler noise: something else ran meanwhile
            line += f", rest of machine {us_per_request(r.other, r.rps):.0f} µs"
        line += ")"
    return line


def client_document() -> dict[str, object]:
    """A stored client for the database ceiling and the library floor: the indexed fields
    and values registration writes, and most of the others (the service's own documents
    carry a few more fields: about 30% more bytes)."""
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
