"""Test-session wiring: real backing services, isolated per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from oidc_common.config import Settings
from tests.support.backing import BackingServices, BackingUnavailable, resolve
from tests.support.services import (
    cleanup_isolated,
    isolated_settings,
    new_tag,
    with_overrides,
)

SettingsFactory = Callable[[str], Settings]

_containers = None
_backing: BackingServices | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _backing, _containers
    if config.option.collectonly:
        return
    try:
        _backing, _containers = resolve()
    except BackingUnavailable as exc:
        pytest.exit(str(exc), returncode=4)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _containers is not None:
        _containers.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"backing services: {_backing.source if _backing else 'not resolved'}"


@pytest.fixture(scope="session")
def backing() -> BackingServices:
    assert _backing is not None
    return _backing


@pytest.fixture
def tag() -> str:
    return new_tag()


@pytest.fixture
async def settings_for(backing: BackingServices, tag: str) -> AsyncIterator[SettingsFactory]:
    """`settings_for("registration")`: settings isolated to this test, cleaned up after it."""
    made: list[Settings] = []

    def factory(service: str) -> Settings:
        settings = isolated_settings(backing, service, tag)
        if made:  # every service of one test shares the same KEK, database and exchange
            settings = with_overrides(settings, key_encryption_key=made[0].key_encryption_key)
        made.append(settings)
        return settings

    yield factory
    await cleanup_isolated(backing, tag)
