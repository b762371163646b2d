"""Which resources are on the tenant's own origin (issue 21): never a prefix resource."""

from __future__ import annotations

import pytest

from oidc_common.resource_indicators import on_tenant_origin
from oidc_common.uris import parse_uri


@pytest.mark.parametrize(
    ("resource", "issuer", "own"),
    [
        ("https://auth.example.com/api/v2/", "https://auth.example.com/", True),
        ("https://AUTH.example.com./userinfo", "https://auth.example.com/", True),
        ("https://auth.example.com:8443/x", "https://auth.example.com/", True),
        ("http://auth.example.com/x", "https://auth.example.com/", True),
        ("https://mcp.auth.example.com/", "https://auth.example.com/", False),
        ("https://auth.example.com.evil/", "https://auth.example.com/", False),
        # A loopback issuer: every loopback name on its port is the same gateway...
        ("http://localhost:8080/api/v2/", "http://localhost:8080/", True),
        ("http://127.0.0.1:8080/", "http://localhost:8080/", True),
        ("http://[::1]:8080/mcp", "http://localhost:8080/", True),
        ("http://localhost/", "http://localhost:80/", True),
        # ... and another port is another local server (an MCP server beside a local run).
        ("http://127.0.0.1:3000/mcp", "http://localhost:8080/", False),
        ("http://localhost:8081/", "http://localhost:8080/", False),
        ("https://mcp.example.com/", "http://localhost:8080/", False),
    ],
)
def test_on_tenant_origin(resource: str, issuer: str, own: bool) -> None:
    assert on_tenant_origin(parse_uri(resource), issuer) is own
