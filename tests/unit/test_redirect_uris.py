"""Redirect URI matching: exact comparison, plus RFC 8252 §7.3 loopback ports for native apps;
the one loopback definition (RFC 8252 §7.3, §8.3; RFC 6890)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oidc_common.redirect_uris import (
    FORBIDDEN_SCHEMES,
    is_loopback,
    is_loopback_host,
    redirect_uri_matches,
)

WEB = "https://app.example.com/cb"

# (case id, registered, requested, application_type, expected)
MATCH_CASES: list[tuple[str, list[str], str, str, bool]] = [
    ("exact_match", [WEB], WEB, "web", True),
    ("exact_match_second_of_several", ["https://a.example/x", WEB], WEB, "web", True),
    ("exact_match_native", [WEB], WEB, "native", True),
    ("exact_match_with_query", [WEB + "?a=1&b=2"], WEB + "?a=1&b=2", "web", True),
    ("no_registered_uris", [], WEB, "web", False),
    ("trailing_slash_added", [WEB], WEB + "/", "web", False),
    (
        "trailing_slash_removed",
        ["https://app.example.com/"],
        "https://app.example.com",
        "web",
        False,
    ),
    ("path_case_differs", [WEB], "https://app.example.com/CB", "web", False),
    ("host_case_differs", [WEB], "https://APP.example.com/cb", "web", False),
    ("scheme_case_differs", [WEB], "HTTPS://app.example.com/cb", "web", False),
    ("query_differs", [WEB + "?a=1"], WEB + "?a=2", "web", False),
    ("query_added", [WEB], WEB + "?a=1", "web", False),
    ("query_removed", [WEB + "?a=1"], WEB, "web", False),
    ("query_reordered", [WEB + "?a=1&b=2"], WEB + "?b=2&a=1", "web", False),
    ("path_prefix_not_enough", [WEB], WEB + "/extra", "web", False),
    ("path_traversal", [WEB], "https://app.example.com/cb/../cb", "web", False),
    ("percent_encoding_not_decoded", [WEB], "https://app.example.com/c%62", "web", False),
    ("default_port_made_explicit", [WEB], "https://app.example.com:443/cb", "web", False),
    ("fragment_added", [WEB], WEB + "#x", "web", False),
    ("userinfo_added", [WEB], "https://user@app.example.com/cb", "web", False),
    ("subdomain", [WEB], "https://evil.app.example.com/cb", "web", False),
    ("host_suffix", [WEB], "https://app.example.com.evil.example/cb", "web", False),
    (
        "web_loopback_other_port",
        ["http://127.0.0.1:8080/cb"],
        "http://127.0.0.1:9090/cb",
        "web",
        False,
    ),
    (
        "web_loopback_same_port",
        ["http://127.0.0.1:8080/cb"],
        "http://127.0.0.1:8080/cb",
        "web",
        True,
    ),
    (
        "native_loopback_any_port",
        ["http://127.0.0.1:8080/cb"],
        "http://127.0.0.1:51004/cb",
        "native",
        True,
    ),
    (
        "native_loopback_registered_without_port",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:51004/cb",
        "native",
        True,
    ),
    (
        "native_loopback_requested_without_port",
        ["http://127.0.0.1:8080/cb"],
        "http://127.0.0.1/cb",
        "native",
        True,
    ),
    ("native_ipv6_loopback_any_port", ["http://[::1]/cb"], "http://[::1]:61000/cb", "native", True),
    (
        "native_localhost_any_port",
        ["http://localhost:3000/"],
        "http://localhost:4000/",
        "native",
        True,
    ),
    (
        "native_loopback_with_query_any_port",
        ["http://127.0.0.1/cb?x=1"],
        "http://127.0.0.1:5000/cb?x=1",
        "native",
        True,
    ),
    ("native_loopback_no_path", ["http://127.0.0.1"], "http://127.0.0.1:5000", "native", True),
    (
        "native_loopback_other_path",
        ["http://127.0.0.1:8080/cb"],
        "http://127.0.0.1:8080/other",
        "native",
        False,
    ),
    (
        "native_loopback_other_path_and_port",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:9/cb/x",
        "native",
        False,
    ),
    (
        "native_loopback_other_query",
        ["http://127.0.0.1/cb?a=1"],
        "http://127.0.0.1:9/cb?a=2",
        "native",
        False,
    ),
    (
        "native_loopback_trailing_slash",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:9/cb/",
        "native",
        False,
    ),
    (
        "native_loopback_other_host",
        ["http://127.0.0.1/cb"],
        "http://localhost:9/cb",
        "native",
        False,
    ),
    ("native_loopback_ipv6_vs_ipv4", ["http://[::1]/cb"], "http://127.0.0.1:9/cb", "native", False),
    (
        "native_loopback_host_case",
        ["http://localhost/cb"],
        "http://LOCALHOST:9/cb",
        "native",
        False,
    ),
    (
        "native_loopback_scheme_upgraded",
        ["http://127.0.0.1/cb"],
        "https://127.0.0.1:9/cb",
        "native",
        False,
    ),
    (
        "native_https_loopback_other_port",
        ["https://127.0.0.1:8443/cb"],
        "https://127.0.0.1:9443/cb",
        "native",
        False,
    ),
    (
        "native_loopback_userinfo",
        ["http://127.0.0.1/cb"],
        "http://evil@127.0.0.1:9/cb",
        "native",
        False,
    ),
    (
        "native_loopback_host_extended",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1.evil.example:9/cb",
        "native",
        False,
    ),
    (
        "native_loopback_port_not_numeric",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:x/cb",
        "native",
        False,
    ),
    (
        "native_loopback_port_out_of_range",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:99999/cb",
        "native",
        False,
    ),
    (
        "native_loopback_fragment",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:9/cb#x",
        "native",
        False,
    ),
    ("native_loopback_ipv6_junk", ["http://[::1]/cb"], "http://[::1]x:9/cb", "native", False),
    (
        "native_non_loopback_other_port",
        ["https://app.example.com:8443/cb"],
        "https://app.example.com:9443/cb",
        "native",
        False,
    ),
    (
        "native_non_loopback_http_other_port",
        ["http://10.0.0.1:80/cb"],
        "http://10.0.0.1:81/cb",
        "native",
        False,
    ),
    ("native_custom_scheme_exact", ["com.example.app:/cb"], "com.example.app:/cb", "native", True),
    (
        "native_custom_scheme_other_path",
        ["com.example.app:/cb"],
        "com.example.app:/cb2",
        "native",
        False,
    ),
    (
        "unknown_application_type_no_port_relaxation",
        ["http://127.0.0.1/cb"],
        "http://127.0.0.1:9/cb",
        "desktop",
        False,
    ),
]


@pytest.mark.parametrize(
    ("registered", "requested", "application_type", "want"),
    [pytest.param(r, q, a, w, id=case) for case, r, q, a, w in MATCH_CASES],
)
def test_redirect_uri_matches(
    registered: list[str], requested: str, application_type: str, want: bool
) -> None:
    assert redirect_uri_matches(registered, requested, application_type) is want


def test_registered_as_tuple() -> None:
    assert redirect_uri_matches((WEB,), WEB, "web")


def test_registered_must_not_be_a_bare_string() -> None:
    with pytest.raises(TypeError):
        redirect_uri_matches(WEB, WEB, "web")


LOOPBACK_CASES: list[tuple[str, str, bool]] = [
    ("ipv4", "http://127.0.0.1/cb", True),
    ("ipv4_port", "http://127.0.0.1:8080/cb", True),
    ("ipv6", "http://[::1]/cb", True),
    ("ipv6_port", "http://[::1]:8080", True),
    ("localhost", "http://localhost/cb", True),
    ("localhost_uppercase", "http://LOCALHOST:1/", True),
    ("https_localhost", "https://localhost/cb", True),
    ("query_only", "http://127.0.0.1?x=1", True),
    ("other_ipv4_loopback", "http://127.0.0.2/cb", True),
    ("last_ipv4_loopback", "http://127.255.255.254:8080/cb", True),
    ("expanded_ipv6", "http://[0:0:0:0:0:0:0:1]/cb", True),
    ("ipv4_mapped_loopback", "http://[::ffff:127.0.0.1]/cb", True),
    ("localhost_trailing_dot", "http://localhost./cb", True),
    ("ipv4_outside_127", "http://128.0.0.1/cb", False),
    ("ipv4_mapped_public", "http://[::ffff:8.8.8.8]/cb", False),
    ("unspecified_ipv4", "http://0.0.0.0/cb", False),
    ("unspecified_ipv6", "http://[::]/cb", False),
    ("integer_ipv4", "http://2130706433/cb", False),
    ("hex_ipv4", "http://0x7f.1/cb", False),
    ("localhost_suffix", "http://localhost.evil.example/cb", False),
    ("localhost_subdomain", "http://evil.localhost/cb", False),
    ("localhost_subdomain_trailing_dot", "http://foo.localhost./cb", False),
    ("public_host", "https://app.example.com/cb", False),
    ("custom_scheme_with_localhost", "myapp://localhost/cb", False),
    ("userinfo", "http://user@127.0.0.1/cb", False),
    ("ipv6_junk", "http://[::1]evil/cb", False),
    ("unclosed_bracket", "http://[::1/cb", False),
    ("bad_port", "http://127.0.0.1:abc/cb", False),
    ("no_scheme", "127.0.0.1/cb", False),
    ("empty", "", False),
    ("empty_host", "http://:8080/cb", False),
    ("empty_brackets", "http://[]/cb", False),
    ("opaque_http", "http:127.0.0.1", False),
]


@pytest.mark.parametrize(
    ("uri", "want"), [pytest.param(uri, want, id=case) for case, uri, want in LOOPBACK_CASES]
)
def test_is_loopback(uri: str, want: bool) -> None:
    assert is_loopback(uri) is want


LOOPBACK_HOST_CASES: list[tuple[str, bool]] = [
    ("localhost", True),
    ("LocalHost", True),
    ("localhost.", True),
    ("127.0.0.1", True),
    ("127.0.0.2", True),
    ("127.1.2.3", True),
    ("::1", True),
    ("[::1]", True),
    ("0:0:0:0:0:0:0:1", True),
    ("::ffff:127.0.0.1", True),
    ("[::ffff:127.0.0.2]", True),
    ("::ffff:7f00:1", True),
    ("foo.localhost", False),
    ("foo.localhost.", False),
    ("localhost.example", False),
    ("128.0.0.1", False),
    ("126.255.255.255", False),
    ("0.0.0.0", False),
    ("::", False),
    ("::2", False),
    ("::ffff:10.0.0.1", False),
    ("127.1", False),
    ("2130706433", False),
    ("0x7f.0.0.1", False),
    ("127.000.000.001", False),
    ("", False),
]


@pytest.mark.parametrize(("host", "want"), LOOPBACK_HOST_CASES)
def test_is_loopback_host(host: str, want: bool) -> None:
    assert is_loopback_host(host) is want


def test_native_any_port_on_every_loopback_spelling() -> None:
    for host in ("127.0.0.2", "[::ffff:127.0.0.1]", "localhost."):
        registered = [f"http://{host}:1/cb"]
        assert redirect_uri_matches(registered, f"http://{host}:2/cb", "native")
    # A *.localhost name is an ordinary host: its port is part of the exact match.
    assert not redirect_uri_matches(
        ["http://app.localhost:1/cb"], "http://app.localhost:2/cb", "native"
    )


def test_constants() -> None:
    assert (
        frozenset({"javascript", "data", "file", "vbscript", "blob", "about"}) == FORBIDDEN_SCHEMES
    )


uris = st.one_of(
    st.text(max_size=30),
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["http://", "https://", "HTTP://", "myapp:/", ""]),
            st.sampled_from(["127.0.0.1", "[::1]", "localhost", "app.example.com", "[::1", "a@b"]),
            st.sampled_from(["", ":", ":8080", ":x", ":99999", ":1"]),
            st.sampled_from(["", "/", "/cb", "/cb?x", "#f", "?q"]),
        ),
    ),
)


@given(registered=st.lists(uris, max_size=4), requested=uris, app=st.sampled_from(["web", "x"]))
def test_non_native_is_plain_membership(registered: list[str], requested: str, app: str) -> None:
    assert redirect_uri_matches(registered, requested, app) is (requested in registered)


@given(registered=st.lists(uris, max_size=4), requested=uris)
def test_native_never_raises_and_exact_match_wins(registered: list[str], requested: str) -> None:
    result = redirect_uri_matches(registered, requested, "native")
    if requested in registered:
        assert result
    if result and requested not in registered:
        # Only the port may have differed: both sides are http loopback URIs.
        assert is_loopback(requested)
        assert any(is_loopback(uri) for uri in registered)


@given(
    host=st.sampled_from(["127.0.0.1", "[::1]", "localhost"]),
    path=st.sampled_from(["", "/", "/cb", "/cb?x=1"]),
    registered_port=st.one_of(st.none(), st.integers(1, 65535)),
    requested_port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_native_loopback_port_is_free(
    host: str, path: str, registered_port: int | None, requested_port: int | None
) -> None:
    def uri(port: int | None) -> str:
        return f"http://{host}{'' if port is None else f':{port}'}{path}"

    assert redirect_uri_matches([uri(registered_port)], uri(requested_port), "native")
    assert not redirect_uri_matches([uri(registered_port)], uri(requested_port) + "x", "native")
