"""End-to-end wiring: one stack of real processes behind the real nginx gateway, shared by
every e2e module of the session (each module sets up the tenant state it needs itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backing import BackingServices
from tests.support.services import cleanup_isolated, isolated_settings, new_tag, settings_env
from tests.support.stack import free_port, load_stack_module


@pytest.fixture(scope="session")
def stack_processes(
    backing: BackingServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, dict[str, str], str]]:
    """The three services as processes (registration with two replicas) and the gateway;
    yields the gateway's port, the demo tenant's Management API credentials and the tag of
    the isolated database, Redis prefix and exchange."""
    stack_module = load_stack_module()
    tag = new_tag()
    settings = isolated_settings(backing, "e2e", tag)
    env = settings_env(settings)
    env["LOG_LEVEL"] = "INFO"
    state: Path = tmp_path_factory.mktemp("stack")
    config = stack_module.StackConfig(
        state=state,
        gateway_port=free_port(),
        ports={
            "registration": free_port(),
            "authorize": free_port(),
            "tenant-settings": free_port(),
        },
        registration_replicas=2,
        env=env,
    )
    # Replica ports are registration + 10 * i: make sure the second one is free too.
    config.ports["registration"] = free_port()
    creds = stack_module.demo_tenant(config)
    assert creds is not None
    stack = stack_module.Stack(config)
    stack.start(timeout=60)
    try:
        yield config.gateway_port, creds, tag
    finally:
        stack.stop()
        asyncio.run(cleanup_isolated(backing, tag))
