"""A private copy of the `make run` stack (deploy/local/stack.py) for one test module: its
own ports, state folder, database, Redis prefix and exchange."""

from __future__ import annotations

import socket
from pathlib import Path
from types import ModuleType
from typing import Any

from .stack import free_port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def replica_base_port(replicas: int) -> int:
    """A free port P such that P + 10 * i is free for every replica i (StackConfig's rule)."""
    for _ in range(50):
        base = free_port()
        if base + 10 * replicas < 65536 and all(
            _bindable(base + 10 * i) for i in range(1, replicas)
        ):
            return base
    raise RuntimeError("no free block of replica ports")


def private_stack_config(
    stack_module: ModuleType, state: Path, env: dict[str, str], replicas: int
) -> Any:
    """A StackConfig as `make run REGISTRATION_REPLICAS={replicas}` builds it (through the
    launcher's own `config_from_env`), moved to free ports, `state` and `env`."""
    config = stack_module.config_from_env(
        {"REGISTRATION_REPLICAS": str(replicas), "GATEWAY_PORT": str(free_port())}
    )
    assert config.registration_replicas == replicas
    config.state = state
    config.env = env
    config.ports = {
        "registration": replica_base_port(replicas),
        "authorize": free_port(),
        "tenant-settings": free_port(),
    }
    return config
