"""Pure rules behind the abuse controls and credential checks."""

from __future__ import annotations

from oidc_common.address_buckets import client_key
from oidc_common.credentials import hash_secret, verify_secret
from oidc_common.tenancy import split_host


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"


def test_ipv4_clients_have_their_own_bucket() -> None:
    assert client_key("198.51.100.7") == "198.51.100.7"
    assert client_key("198.51.100.7") != client_key("198.51.100.8")
    assert client_key("not-an-ip") == "not-an-ip"


def test_secrets_that_are_not_valid_unicode_never_match_and_never_raise() -> None:
    stored = hash_secret("s3cret")
    assert verify_secret("s3cret", stored)
    assert not verify_secret("\ud800", stored)
    assert not verify_secret("s3cret", None)
    assert not verify_secret("s3cret", "md5$abc")


def test_hosts_that_no_tenant_can_have_resolve_to_nothing() -> None:
    assert split_host("Auth.Example.com:8443") == ("auth.example.com", "8443")
    assert split_host("[::1]:8080") == ("::1", "8080")
    assert split_host("a" * 300 + ".example") == ("", None)
    assert split_host("acme\u00ff.example") == ("", None)
    assert split_host("evil.example/path") == ("", None)
