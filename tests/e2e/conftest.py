"""End-to-end wiring: one stack of real processes behind the real nginx gateway, shared by
every e2e module of the session (each module sets up the tenant state it needs itself), and
the sign-in tests' browser, client callback page and tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from tests.support.backing import BackingServices
from tests.support.browser import Callback, callback_server, chromium, new_page
from tests.support.gateway import Edge, SignInTenant
from tests.support.stack import gateway_stack


@pytest.fixture(scope="session")
def stack_processes(
    backing: BackingServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, dict[str, str], str]]:
    """The three services as processes (registration with two replicas) and the gateway;
    yields the gateway's port, the demo tenant's Management API credentials and the tag of
    the isolated database, Redis prefix and exchange."""
    with gateway_stack(backing, tmp_path_factory.mktemp("stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
async def edge(stack_processes: tuple[int, dict[str, str], str]) -> AsyncIterator[Edge]:
    """HTTP through the gateway as the tenant `localhost` (its owner, or a client)."""
    port, creds, _ = stack_processes
    async with aiohttp.ClientSession() as session:
        yield Edge(port, creds, session)


@pytest.fixture(scope="module")
async def tenant(edge: Edge) -> SignInTenant:
    """Registration on (both replicas agree), a user of this module, the seed's API
    `appointments:api`."""
    return await edge.sign_in_tenant()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium (a failure, not a skip, when it is missing)."""
    async with chromium() as instance:
        yield instance


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser profile: every test signs in. The provider's pages must not
    trip their own Content-Security-Policy (a blocked stylesheet or script shows up here)."""
    async with new_page(browser) as fresh:
        errors: list[str] = []
        fresh.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield fresh
    violations = [text for text in errors if "Content Security Policy" in text]
    assert not violations, violations


@pytest.fixture
async def loopback_callback() -> AsyncIterator[Callback]:
    """The client's redirect URI `http://127.0.0.1:{port}/callback`, served by the test."""
    async with callback_server("http://127.0.0.1:{port}") as callback:
        yield callback
