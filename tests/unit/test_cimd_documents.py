"""Client ID Metadata Documents without the network: the Client Identifier URL rules (draft -02
§3), the document rules (§4, §4.1, the registration schema), and cache lifetimes (§5.2, RFC
9111 within the tenant's bounds)."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from authorize_service.client_id_metadata.caching import cache_seconds, freshness_lifetime
from authorize_service.client_id_metadata.documents import client_from_document, parse_document
from authorize_service.client_id_metadata.errors import MetadataDocumentError
from authorize_service.client_id_metadata.urls import (
    looks_like_document_url,
    parse_client_id_url,
)
from oidc_common.registration_policy import RegistrationPolicy

URL = "https://client.example/oauth/client.json"
POLICY = RegistrationPolicy(client_id_metadata_documents=True)


@pytest.mark.parametrize(
    "client_id", [URL, "https://client.example:8443/c", "https://client.example/c?v=1"]
)
def test_valid_client_identifier_urls(client_id: str) -> None:
    url = parse_client_id_url(client_id)
    assert url.url == client_id and url.host == "client.example"


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        ("https://client.example", "path"),
        ("https://client.example/a/../b", "segments"),
        ("https://client.example/a/./b", "segments"),
        ("https://client.example/a/%2e%2E/b", "segments"),
        ("https://client.example/c#frag", "fragment"),
        ("https://client.example/c#", "fragment"),
        ("https://user:pw@client.example/c", "userinfo"),
        ("HTTPS://client.example/c", "https://"),
        ("https://client.example/" + "a" * 300, "at most"),
        ("https://client.example/c d", "whitespace"),
        ("https://0x7f.1/c", "IPv4"),
    ],
)
def test_invalid_client_identifier_urls(client_id: str, reason: str) -> None:
    assert looks_like_document_url(client_id)
    with pytest.raises(MetadataDocumentError, match=reason):
        parse_client_id_url(client_id)


@pytest.mark.parametrize("client_id", ["abc123", "http://client.example/c", "urn:x", ""])
def test_other_client_ids_are_not_document_urls(client_id: str) -> None:
    assert not looks_like_document_url(client_id)


def document(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": URL,
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "software_id": "agent",
    }
    body.update(members)
    return {name: value for name, value in body.items() if value is not ...}


def client(**members: Any):  # type: ignore[no-untyped-def]
    return client_from_document(parse_client_id_url(URL), document(**members), "t1", POLICY)


def test_document_describes_a_public_third_party_client() -> None:
    described = client()
    assert described.client_id == URL and described.document_host == "client.example"
    assert described.is_public and not described.is_first_party and described.dynamic
    assert described.redirect_uris == ("http://127.0.0.1/callback",)
    assert described.grant_types == {"authorization_code", "refresh_token"}
    assert described.metadata["software_id"] == "agent"
    assert "client_id" not in described.metadata


def test_absent_auth_method_means_none() -> None:
    assert client(token_endpoint_auth_method=...).token_endpoint_auth_method == "none"


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"client_id": URL + "x"}, "client_id must be exactly"),
        ({"client_id": "https://client.example/oauth/client.json/"}, "client_id must be exactly"),
        ({"client_id": ...}, "client_id must be exactly"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "shared secret"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "shared secret"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "shared secret"),
        ({"client_secret": "s3cret"}, "must not contain client_secret"),
        ({"client_secret_expires_at": 0}, "client_secret_expires_at"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "private_key_jwt is not supported"),
        ({"jwks_uri": "https://client.example/jwks"}, "private_key_jwt is not supported"),
        ({"jwks": {"keys": []}}, "private_key_jwt is not supported"),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "only none"),
        ({"token_endpoint_auth_method": ["none"]}, "only none"),
        ({"redirect_uris": ["http://client.example/cb"]}, "loopback"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
        ({"redirect_uris": ["https://client.example/cb#x"]}, "fragment"),
        ({"redirect_uris": []}, "must not be empty"),
        ({"redirect_uris": ...}, "redirect_uris: is required"),
        ({"grant_types": ["client_credentials"], "response_types": []}, "confidential"),
    ],
)
def test_document_rules(members: dict[str, Any], reason: str) -> None:
    with pytest.raises(MetadataDocumentError, match=reason):
        client(**members)


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'"x"', b'{"a": NaN}', b"\xff\xfe{}", "{}".encode("utf-16")]
)
def test_documents_must_be_json_objects_in_utf8(body: bytes) -> None:
    with pytest.raises(MetadataDocumentError, match=r"not valid JSON|JSON object"):
        parse_document(parse_client_id_url(URL), body)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize(
    ("pairs", "lifetime"),
    [
        ((), None),
        ((("Cache-Control", "max-age=600"),), 600),
        ((("Cache-Control", "public, max-age=600"), ("Age", "100")), 500),
        ((("Cache-Control", "max-age=600, s-maxage=30"),), 30),
        ((("Cache-Control", 'max-age="120"'),), 120),
        ((("Cache-Control", "no-store"),), 0),
        ((("Cache-Control", "max-age=600"), ("Cache-Control", "no-cache")), 0),
        ((("Cache-Control", "max-age=soon"),), 0),
        (
            (
                ("Date", "Sun, 01 Nov 2026 10:00:00 GMT"),
                ("Expires", "Sun, 01 Nov 2026 10:05:00 GMT"),
            ),
            300,
        ),
        ((("Expires", "0"), ("Date", "Sun, 01 Nov 2026 10:00:00 GMT")), 0),
    ],
)
def test_freshness_lifetime(pairs: tuple[tuple[str, str], ...], lifetime: int | None) -> None:
    assert freshness_lifetime(headers(*pairs)) == lifetime


@pytest.mark.parametrize(
    ("lifetime", "expected"), [(None, 60), (0, 60), (30, 60), (600, 600), (86400, 3600)]
)
def test_cache_seconds_are_clamped_to_the_tenant_bounds(
    lifetime: int | None, expected: int
) -> None:
    assert cache_seconds(lifetime, 60, 3600) == expected


def test_no_store_is_not_cached_when_the_minimum_is_zero() -> None:
    assert cache_seconds(0, 0, 3600) == 0
