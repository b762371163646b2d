"""The whole stack as processes behind the real nginx gateway, as `make run` starts it."""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from .backing import BackingServices
from .services import cleanup_isolated, isolated_settings, new_tag, settings_env

ROOT = Path(__file__).resolve().parents[2]


def load_stack_module() -> ModuleType:
    """deploy/local/stack.py, the launcher `make run` uses (a script on the path, not a package)."""
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    return importlib.import_module("stack")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def gateway_stack(
    backing: BackingServices, state: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[int, dict[str, str], str]]:
    """The three services as processes (registration with two replicas) and the gateway,
    with `extra_env` for the services; yields the gateway's port, the demo tenant's
    Management API credentials and the tag of the isolated database, Redis prefix and
    exchange (all removed afterwards)."""
    stack_module = load_stack_module()
    tag = new_tag()
    env = settings_env(isolated_settings(backing, "e2e", tag))
    env.update(LOG_LEVEL="INFO", **(extra_env or {}))
    ports = {name: free_port() for name in ("registration", "authorize", "tenant-settings")}
    config = stack_module.StackConfig(
        state=state, gateway_port=free_port(), ports=ports, registration_replicas=2, env=env
    )
    creds = stack_module.demo_tenant(config)
    assert creds is not None
    stack = stack_module.Stack(config)
    stack.start(timeout=60)
    try:
        yield config.gateway_port, creds, tag
    finally:
        stack.stop()
        asyncio.run(cleanup_isolated(backing, tag))
