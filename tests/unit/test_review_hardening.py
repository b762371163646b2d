"""The second review of issue 21's fixes (a helper's probes): what it found, fixed."""

from __future__ import annotations

import pytest

from oidc_common.address_buckets import client_key
from oidc_common.errors import OAuthError
from oidc_common.resource_indicators import check_resource_prefix, parse_resource
from oidc_common.tenancy import split_host
from oidc_common.text import UNSAFE_TEXT, looks_like


@pytest.mark.parametrize(
    "host", ["localhost:018080", "localhost:99999", "localhost:0", "[::1]:080"]
)
def test_a_host_with_a_port_no_issuer_can_have_names_no_tenant(host: str) -> None:
    assert split_host(host)[0] == ""


def test_ports_that_are_ports_still_select_the_tenant() -> None:
    assert split_host("localhost:8080") == ("localhost", "8080")
    assert split_host("[::1]:65535") == ("::1", "65535")
    assert split_host("auth.example.com") == ("auth.example.com", None)


def test_ipv4_mapped_clients_count_as_their_ipv4_address() -> None:
    assert client_key("::ffff:203.0.113.99") == "203.0.113.99"
    assert client_key("::ffff:198.51.100.50") != client_key("::ffff:203.0.113.99")
    assert client_key("2001:db8::1") == "2001:db8::/64"


@pytest.mark.parametrize(
    "resource",
    [
        "https://mcp.example.com/tenant-a/../tenant-b/",
        "https://mcp.example.com/tenant-a/%2e%2e/tenant-b/",
        "https://mcp.example.com/tenant-a/%2E./x",
        "https://mcp.example.com/./a",
    ],
)
def test_dot_segments_never_escape_a_prefix(resource: str) -> None:
    with pytest.raises(OAuthError) as refused:
        parse_resource(resource)
    assert refused.value.error == "invalid_target"
    with pytest.raises(ValueError):
        check_resource_prefix(resource)


def test_a_braille_blank_is_refused() -> None:
    assert UNSAFE_TEXT.search("Demo tenant\u2800")


@pytest.mark.parametrize(
    "name",
    ["DemoTenant", "Demo-tenant", "Demo_tenant", "Dem0 tenant", "Demo tenant.", "DEMO  TENANT"],
)
def test_names_that_read_as_the_tenants_are_caught(name: str) -> None:
    assert looks_like(name, "Demo tenant")


@pytest.mark.parametrize("name", ["Demo tenant notes", "Memo tenant", "Notes for Demo"])
def test_other_names_are_not(name: str) -> None:
    assert not looks_like(name, "Demo tenant")
