"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import SettingsFactory
from tests.support.backing import BackingServices
from tests.support.registration import Dcr, dcr_stack
from tests.support.services import cleanup_isolated, isolated_settings, new_tag


@pytest.fixture
async def dcr(settings_for: SettingsFactory) -> AsyncIterator[Dcr]:
    """A tenant of its own with registration open (default policy), for one test."""
    async with dcr_stack(settings_for("registration"), settings_for("tenant-settings")) as stack:
        await stack.set_registration(True)
        yield stack


@pytest.fixture(scope="module")
async def shared_open_dcr(backing: BackingServices) -> AsyncIterator[Dcr]:
    """One tenant with registration open and a generous rate limit, for a whole module of
    requests that must not change anything (invalid bodies, fuzzing)."""
    tag = new_tag()
    try:
        async with dcr_stack(
            isolated_settings(backing, "registration", tag),
            isolated_settings(backing, "tenant-settings", tag),
        ) as stack:
            await stack.patch_settings(
                {
                    "flags": {"enable_dynamic_client_registration": True},
                    "dynamic_client_registration": {"rate_limit": {"requests": 100_000}},
                }
            )
            yield stack
    finally:
        await cleanup_isolated(backing, tag)
