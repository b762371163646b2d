"""The whole stack as processes behind the real nginx gateway, as `make run` starts it."""

from __future__ import annotations

import importlib
import socket
import sys
from pathlib import Path
from types import ModuleType

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
