#!/usr/bin/env python3
"""Run the whole stack on one machine without Docker: `make run` and `make stop`.

    stack.py run     backing services, the demo tenant, three services, the nginx gateway;
                     prints credentials and first commands; Ctrl-C stops everything.
    stack.py stop    stops what a `run` started (PID files), then the backing services.

The end-to-end tests start the same stack through `Stack` with their own ports and state.
`REGISTRATION_REPLICAS=3` (`make run REGISTRATION_REPLICAS=3`) runs three registration
processes on ports 8001, 8011, 8021 behind the gateway; `Stack` can stop (SIGTERM, graceful)
and start again any one of them, as the scale-out test does under load.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
BACKING = ROOT / "deploy" / "local" / "backing.sh"
GATEWAY_DEFINITION = ROOT / "deploy" / "nginx" / "gateway.py"
SERVICES = ("tenant-settings", "authorize", "registration")
# Local processes drain for one second after SIGTERM unless told otherwise: the local nginx
# does not poll /readyz, so a longer drain only delays Ctrl-C (the services' own default,
# 5 s, is for load balancers that do).
LOCAL_DRAIN_SECONDS = "1"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


@dataclass
class StackConfig:
    state: Path = ROOT / ".local"
    gateway_port: int = 8080
    ports: dict[str, int] = field(
        default_factory=lambda: {"registration": 8001, "authorize": 8002, "tenant-settings": 8003}
    )
    registration_replicas: int = 1
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable

    def replica_ports(self) -> list[int]:
        return [self.ports["registration"] + 10 * i for i in range(self.registration_replicas)]


def config_from_env(environ: dict[str, str] | None = None) -> StackConfig:
    """The configuration `stack.py run` uses: `GATEWAY_PORT` (8080) and
    `REGISTRATION_REPLICAS` (1, at most 20) from the environment (the Makefile passes them)."""
    env = dict(os.environ) if environ is None else environ
    replicas = int(env.get("REGISTRATION_REPLICAS") or "1")
    if not 1 <= replicas <= 20:
        raise ValueError(f"REGISTRATION_REPLICAS: {replicas} is outside 1..20")
    return StackConfig(
        gateway_port=int(env.get("GATEWAY_PORT") or "8080"), registration_replicas=replicas
    )


def key_encryption_key(config: StackConfig) -> str:
    """The stack's key-encryption key: configured, or made once in the state folder (mode 600)."""
    if value := config.env.get("KEY_ENCRYPTION_KEY") or os.environ.get("KEY_ENCRYPTION_KEY"):
        return value
    state = config.state
    path = state / "key-encryption-key"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def load_script(name: str, path: Path) -> ModuleType:
    """A script of deploy/ (not a package) as the module `name`, loaded once per process, so
    everything that loads it (this launcher, deploy/check.py, the tests) shares one copy."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def load_gateway_definition() -> ModuleType:
    """deploy/nginx/gateway.py, which renders the one definition of the gateway."""
    return load_script("dcr_gateway_definition", GATEWAY_DEFINITION)


def wait_http(url: str, seconds: float, host: str | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        request = urllib.request.Request(url, headers={"Host": host} if host else {})
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=2) as response:
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


class Stack:
    """The services and the gateway as child processes, by instance name (`tenant-settings`,
    `authorize`, `registration-1`…, `gateway`)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.run_dir = config.state / "run"
        self.log_dir = config.state / "logs"
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        # instance -> (service, port), to start an instance again where it was.
        self.instances: dict[str, tuple[str, int]] = {}

    def service_env(self, service: str, port: int, instance: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.config.env)
        env.update({"PORT": str(port), "INSTANCE_ID": instance})
        env["KEY_ENCRYPTION_KEY"] = key_encryption_key(self.config)
        env.setdefault("SHUTDOWN_DRAIN_SECONDS", LOCAL_DRAIN_SECONDS)
        return env

    def shutdown_seconds(self) -> float:
        """How long a service may take to exit after SIGTERM: its drain and grace periods
        (as its environment sets them, else its defaults) and a margin for closing."""
        env = self.service_env("registration", 0, "")
        drain = float(env.get("SHUTDOWN_DRAIN_SECONDS") or LOCAL_DRAIN_SECONDS)
        grace = float(env.get("SHUTDOWN_GRACE_SECONDS") or "20")
        return drain + grace + 5.0

    def start_service(self, service: str, port: int, instance: str) -> None:
        module = service.replace("-", "_") + "_service"
        log = (self.log_dir / f"{instance}.log").open("ab")
        process = subprocess.Popen(
            [self.config.python, "-m", module],
            env=self.service_env(service, port, instance),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child holds its own descriptor
        (self.run_dir / f"{instance}.pid").write_text(str(process.pid))
        self.processes = [(n, p) for n, p in self.processes if n != instance]
        self.processes.append((instance, process))
        self.instances[instance] = (service, port)

    def process(self, instance: str) -> subprocess.Popen[bytes]:
        """The running (or exited) process of `instance`; KeyError if it never started."""
        for name, process in self.processes:
            if name == instance:
                return process
        raise KeyError(instance)

    def terminate(self, instance: str) -> None:
        """Send SIGTERM to `instance` (a graceful shutdown); returns at once."""
        process = self.process(instance)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def wait_exit(self, instance: str, timeout: float | None = None) -> int:
        """Wait for `instance` to exit (killing it after `timeout`, by default its drain and
        grace periods plus a margin); its exit status, negative for a signal."""
        process = self.process(instance)
        try:
            return process.wait(timeout=self.shutdown_seconds() if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return process.returncode
        finally:
            (self.run_dir / f"{instance}.pid").unlink(missing_ok=True)

    def restart(self, instance: str, timeout: float = 60.0) -> None:
        """Start a service instance that exited again, on its port; returns once it is ready."""
        if self.process(instance).poll() is None:
            raise RuntimeError(f"{instance} is still running")
        service, port = self.instances[instance]
        self.start_service(service, port, instance)
        self.wait_ready(instance, timeout)

    def wait_ready(self, instance: str, timeout: float) -> None:
        """Wait until `instance` answers /readyz with 200; RuntimeError after `timeout`."""
        port = self.instances[instance][1]
        if not wait_http(f"http://127.0.0.1:{port}/readyz", timeout):
            raise RuntimeError(
                f"{instance} did not become ready on port {port} "
                f"(see {self.log_dir / (instance + '.log')})"
            )

    def render_gateway(self) -> Path:
        """The gateway's configuration for this stack, rendered from deploy/nginx/gateway.py
        (the routes compose and Kubernetes use too) into the nginx prefix folder, where the
        pid file and temporary folders go as well."""
        gateway = load_gateway_definition()
        target = gateway.local_target(
            self.config.gateway_port,
            {
                "registration": self.config.replica_ports(),
                "authorize": [self.config.ports["authorize"]],
                "tenant-settings": [self.config.ports["tenant-settings"]],
            },
        )
        prefix = self.config.state / "nginx"
        prefix.mkdir(parents=True, exist_ok=True)
        path = prefix / "gateway.conf"
        path.write_text(gateway.render(target))
        return path

    def start_gateway(self) -> None:
        conf = self.render_gateway()
        check = subprocess.run(
            ["nginx", "-t", "-q", "-c", str(conf), "-p", str(self.config.state / "nginx")],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx: gateway configuration rejected: {check.stderr.strip()}")
        process = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.config.state / "nginx"), "-g", "daemon off;"],
            stdout=(self.log_dir / "gateway.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (self.run_dir / "gateway.pid").write_text(str(process.pid))
        self.processes.append(("gateway", process))

    def start(self, timeout: float = 60.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.start_service(
            "tenant-settings", self.config.ports["tenant-settings"], "tenant-settings"
        )
        self.start_service("authorize", self.config.ports["authorize"], "authorize")
        for index, port in enumerate(self.config.replica_ports()):
            self.start_service("registration", port, f"registration-{index + 1}")
        self.start_gateway()
        for name, (_service, port) in self.instances.items():
            try:
                self.wait_ready(name, timeout)
            except RuntimeError:
                self.stop()
                raise
            say(f"{name} ready on 127.0.0.1:{port}")

    def stop(self) -> None:
        """SIGTERM to every process at once (the services drain and flush in parallel), then
        wait for each, killing what outlives its shutdown periods."""
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_seconds()
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        self.processes.clear()


def stop_from_pidfiles(state: Path) -> None:
    run_dir = state / "run"
    names = ["gateway", "registration-*", "authorize", "tenant-settings"]
    for pattern in names:
        for pidfile in sorted(run_dir.glob(f"{pattern}.pid")):
            with contextlib.suppress(ValueError, ProcessLookupError):
                pid = int(pidfile.read_text())
                os.kill(pid, signal.SIGTERM)
                say(f"stopped {pidfile.stem} (pid {pid})")
            pidfile.unlink(missing_ok=True)


def demo_tenant(config: StackConfig) -> dict[str, str]:
    """Create the `localhost` tenant if absent; its credentials are kept in the state folder
    (and replaced by a new secret if that file was lost: only a hash of the old one exists)."""
    creds_file = config.state / "demo-tenant.json"
    env = dict(os.environ)
    env.update(config.env)
    # A key made just now cannot open keys sealed before: then the database's tenant is not
    # this checkout's (another checkout's backing services on the same ports, or a wiped
    # .local/), and renewing its secret would only lock the other one out.
    kek_is_new = not (
        (config.state / "key-encryption-key").exists()
        or config.env.get("KEY_ENCRYPTION_KEY")
        or os.environ.get("KEY_ENCRYPTION_KEY")
    )
    env["KEY_ENCRYPTION_KEY"] = key_encryption_key(config)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [config.python, "-m", "tenant_settings_service", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    result = cli("create-tenant", "--domain", "localhost", "--name", "Demo tenant")
    if result.returncode == 0:
        say("created the demo tenant for domain 'localhost'")
    elif "already exists" not in result.stderr:
        raise RuntimeError(f"creating the demo tenant failed: {result.stderr.strip()}")
    elif creds_file.exists():
        say("demo tenant 'localhost' already exists")
    elif kek_is_new:
        (config.state / "key-encryption-key").unlink()  # still new on the next try
        raise RuntimeError(
            "the database already holds a tenant 'localhost' that this checkout did not create "
            "(its signing keys were sealed with another KEY_ENCRYPTION_KEY). Another checkout's "
            "backing services probably answer on the default ports: run this one on its own, "
            "e.g. REDIS_PORT=6390 RABBITMQ_PORT=5690 MONGODB_PORT=27090 GATEWAY_PORT=8090 "
            "make run"
        )
    else:
        result = cli("rotate-management-secret", "--domain", "localhost")
        if result.returncode != 0:
            raise RuntimeError(f"renewing the demo credentials failed: {result.stderr.strip()}")
        say("demo tenant 'localhost' exists, its credentials file was gone: issued a new secret")
    if result.returncode == 0:
        creds_file.write_text(result.stdout)
        creds_file.chmod(0o600)
    data: dict[str, str] = json.loads(creds_file.read_text())
    return data


def print_welcome(config: StackConfig, creds: dict[str, str], demo_text: str = "") -> None:
    base = f"http://localhost:{config.gateway_port}"
    print(f"""
================================================================================
 The OpenID provider runs behind the gateway at {base}/
================================================================================

 Demo tenant 'localhost' — Management API client (first-party, machine-to-machine):
   client_id:     {creds["client_id"]}
   client_secret: {creds["client_secret"]}

 Try:
   curl -s {base}/.well-known/openid-configuration

   TOKEN=$(curl -s {base}/oauth/token -d grant_type=client_credentials \\
     -d client_id={creds["client_id"]} -d client_secret={creds["client_secret"]} \\
     -d audience={base}/api/v2/ | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')

   curl -s -X PATCH {base}/api/v2/tenants/settings -H "authorization: Bearer $TOKEN" \\
     -H 'content-type: application/json' -d '{{"flags":{{"enable_dynamic_client_registration":true}}}}'

   curl -s -X POST {base}/oidc/register -H 'content-type: application/json' \\
     -d '{{"client_name":"My Dynamic Application","redirect_uris":["https://application.example.com/callback"]}}'""")
    if demo_text:
        print(demo_text)
    print("\n Logs: .local/logs/   Stop: Ctrl-C here, or 'make stop' from another shell.\n")


def run(config: StackConfig) -> int:
    subprocess.run([str(BACKING), "start"], check=True)
    env_lines = subprocess.run(
        [str(BACKING), "env"], check=True, capture_output=True, text=True
    ).stdout.split()
    for item in env_lines:
        if "=" in item:
            name, value = item.split("=", 1)
            config.env.setdefault(name, value)
    creds = demo_tenant(config)
    stack = Stack(config)
    say("starting the services and the gateway")
    stack.start()
    if not wait_http(
        f"http://127.0.0.1:{config.gateway_port}/.well-known/openid-configuration",
        30,
        host=f"localhost:{config.gateway_port}",
    ):
        say("warning: the gateway does not answer discovery yet")
    import demo  # deploy/local/demo.py, beside this script

    print_welcome(
        config, creds, demo.welcome_text(demo.prepare(config.gateway_port, creds, config.state))
    )
    stopping = False

    def on_signal(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            for name, process in stack.processes:
                if process.poll() is not None:
                    say(f"{name} exited with {process.returncode}; stopping (see .local/logs/)")
                    stopping = True
            time.sleep(0.5)
    finally:
        say("stopping")
        stack.stop()
        subprocess.run([str(BACKING), "stop"], check=False)
    return 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    try:
        config = config_from_env()
    except ValueError as exc:
        say(f"ERROR: {exc}")
        return 2
    if command == "run":
        try:
            return run(config)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            say(f"ERROR: {exc}")
            stop_from_pidfiles(config.state)
            return 1
    if command == "stop":
        stop_from_pidfiles(config.state)
        subprocess.run([str(BACKING), "stop"], check=False)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
