"""The whole stack as processes behind the real nginx gateway, as `make run` starts it."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_stack_module() -> ModuleType:
    """deploy/local/stack.py is a script, not a package: load it by path."""
    path = ROOT / "deploy" / "local" / "stack.py"
    spec = importlib.util.spec_from_file_location("dcr_local_stack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
