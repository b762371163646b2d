"""What the services' admin commands share: reading the configuration, and how a refusal
or a configuration error ends (one line on stderr, exit status 1 or 2, no traceback)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from .config import ConfigError, Settings


class CommandRefused(Exception):
    """The command changed nothing, for the reason given (no such tenant, one exists)."""


class UnknownTenantError(CommandRefused):
    """No tenant has the given domain."""


def _configuration_error(service: str, exc: ConfigError) -> int:
    print(f"{service}: configuration error: {exc}", file=sys.stderr)
    return 2


def command_settings(service: str) -> Settings:
    """The service's settings from the environment; a bad one ends the process (status 2)."""
    try:
        return Settings.from_env(service)
    except ConfigError as exc:
        raise SystemExit(_configuration_error(service, exc)) from exc


def run_command(service: str, command: Coroutine[Any, Any, int]) -> int:
    """Run an admin command to its exit status."""
    try:
        return asyncio.run(command)
    except CommandRefused as exc:
        print(f"{service}: {exc}; nothing was changed", file=sys.stderr)
        return 1
    except ConfigError as exc:
        return _configuration_error(service, exc)
