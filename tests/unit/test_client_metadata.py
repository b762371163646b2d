"""Client metadata validation: RFC 7591, RFC 7592 §2.2, OIDC DCR 1.0, RFC 8252."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc_common.client_metadata import (
    GRANT_TYPES,
    RESPONSE_TYPES,
    ClientMetadataError,
    MetadataPolicy,
    validate_client_metadata,
)
from oidc_common.client_metadata import TOKEN_ENDPOINT_AUTH_METHODS as AUTH_METHODS
from registration_service.rfc7592.update_request import validate_update_request
from tests.cases.invalid_registrations import INVALID_REGISTRATIONS

ERROR_CODES = {"invalid_redirect_uri", "invalid_client_metadata"}
WEB_URI = "https://app.example.com/cb"

# What every registration gets when the client says nothing else.
DEFAULTS: dict[str, Any] = {
    "application_type": "web",
    "token_endpoint_auth_method": "client_secret_post",
    "grant_types": ["authorization_code"],
    "response_types": ["code"],
    "id_token_signed_response_alg": "RS256",
    "require_auth_time": False,
}

PUBLIC_RSA = {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": "0vx7ag", "e": "AQAB"}
PUBLIC_EC = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "key_ops": ["verify"],
    "ext": True,
}

FULL_WEB_BODY: dict[str, Any] = {
    "redirect_uris": [WEB_URI, "https://app.example.com/other"],
    "client_name": "Example App",
    "client_name#fr-CA": "Application exemple",
    "client_uri": "https://www.example.com/",
    "logo_uri": "https://app.example.com/logo.png",
    "policy_uri": "https://www.example.com/privacy",
    "tos_uri": "https://www.example.com/tos",
    "scope": "openid profile email",
    "contacts": ["ops@example.com"],
    "jwks_uri": "https://app.example.com/jwks.json",
    "default_max_age": 3600,
    "require_auth_time": True,
    "software_id": "4NRB1-0XZABZI9E6-5SM3R",
    "software_version": "2.1",
}


def expected(**members: Any) -> dict[str, Any]:
    return {**DEFAULTS, **members}


VALID_REGISTRATIONS: list[tuple[str, object, MetadataPolicy, dict[str, Any]]] = [
    (
        "minimal_web",
        {"redirect_uris": [WEB_URI]},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI]),
    ),
    (
        "nulls_mean_absent",
        {"redirect_uris": [WEB_URI], "client_name": None, "grant_types": None, "jwks": None},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI]),
    ),
    (
        "unknown_and_server_assigned_fields_dropped",
        {
            "redirect_uris": [WEB_URI],
            "client_id": "chosen-by-client",
            "client_secret": "chosen-by-client",
            "registration_access_token": "x",
            "x-custom": {"a": [1, 2]},
            "userinfo_signed_response_alg": "none",
            "unknown#fr": "dropped",
        },
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI]),
    ),
    (
        "full_web",
        FULL_WEB_BODY,
        MetadataPolicy(),
        expected(**FULL_WEB_BODY),
    ),
    (
        "web_http_loopback",
        {"redirect_uris": ["http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:9/"]},
        MetadataPolicy(),
        expected(
            redirect_uris=["http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:9/"]
        ),
    ),
    (
        # One loopback definition (oidc_common.redirect_uris): all of 127.0.0.0/8, ::1 in any
        # spelling, IPv4-mapped 127.0.0.0/8 and `localhost.` may use plain http.
        "web_http_any_loopback_spelling",
        {
            "redirect_uris": [
                "http://127.0.0.2/cb",
                "http://[::ffff:127.0.0.1]/cb",
                "http://[0:0:0:0:0:0:0:1]:9/cb",
                "http://localhost./cb",
            ]
        },
        MetadataPolicy(),
        expected(
            redirect_uris=[
                "http://127.0.0.2/cb",
                "http://[::ffff:127.0.0.1]/cb",
                "http://[0:0:0:0:0:0:0:1]:9/cb",
                "http://localhost./cb",
            ]
        ),
    ),
    (
        "web_https_localhost_without_implicit",
        {"redirect_uris": ["https://localhost:8443/cb"]},
        MetadataPolicy(),
        expected(redirect_uris=["https://localhost:8443/cb"]),
    ),
    (
        "web_query_kept_verbatim",
        {"redirect_uris": ["https://App.Example.com:443/cb?tenant=a&x=%2F"]},
        MetadataPolicy(),
        expected(redirect_uris=["https://App.Example.com:443/cb?tenant=a&x=%2F"]),
    ),
    (
        "native_loopback",
        {
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1/cb", "http://[::1]/cb", "http://localhost/cb"],
        },
        MetadataPolicy(),
        expected(
            application_type="native",
            token_endpoint_auth_method="none",
            redirect_uris=["http://127.0.0.1/cb", "http://[::1]/cb", "http://localhost/cb"],
        ),
    ),
    (
        "native_custom_schemes",
        {
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["com.example.app:/oauth2redirect/example-provider", "myapp://cb"],
        },
        MetadataPolicy(),
        expected(
            application_type="native",
            token_endpoint_auth_method="none",
            redirect_uris=["com.example.app:/oauth2redirect/example-provider", "myapp://cb"],
        ),
    ),
    (
        "native_claimed_https",
        {"application_type": "native", "redirect_uris": ["https://app.example.com/native/cb"]},
        MetadataPolicy(),
        expected(application_type="native", redirect_uris=["https://app.example.com/native/cb"]),
    ),
    (
        "native_implicit_loopback",
        {
            "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "response_types": ["id_token"],
        },
        MetadataPolicy(),
        expected(
            application_type="native",
            redirect_uris=["http://127.0.0.1/cb"],
            grant_types=["implicit"],
            response_types=["id_token"],
        ),
    ),
    (
        "grant_types_derive_response_types",
        {
            "redirect_uris": [WEB_URI],
            "grant_types": ["authorization_code", "implicit", "refresh_token", "implicit"],
        },
        MetadataPolicy(),
        expected(
            redirect_uris=[WEB_URI],
            grant_types=["authorization_code", "implicit", "refresh_token"],
            response_types=["code", "token", "id_token", "id_token token"],
        ),
    ),
    (
        "response_types_derive_grant_types",
        {"redirect_uris": [WEB_URI], "response_types": ["token id_token", "code", "code"]},
        MetadataPolicy(),
        expected(
            redirect_uris=[WEB_URI],
            grant_types=["authorization_code", "implicit"],
            response_types=["id_token token", "code"],
        ),
    ),
    (
        "token_id_token_normalised_and_deduplicated",
        {
            "redirect_uris": [WEB_URI],
            "response_types": ["id_token token", "token id_token"],
            "grant_types": ["implicit"],
        },
        MetadataPolicy(),
        expected(
            redirect_uris=[WEB_URI], grant_types=["implicit"], response_types=["id_token token"]
        ),
    ),
    (
        "client_credentials_only",
        {
            "redirect_uris": [WEB_URI],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        MetadataPolicy(),
        expected(
            redirect_uris=[WEB_URI],
            grant_types=["client_credentials"],
            response_types=[],
            token_endpoint_auth_method="client_secret_basic",
        ),
    ),
    (
        "client_credentials_with_empty_response_types",
        {"redirect_uris": [WEB_URI], "grant_types": ["client_credentials"], "response_types": []},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI], grant_types=["client_credentials"], response_types=[]),
    ),
    (
        "language_tagged_fields_kept_as_given",
        {
            "redirect_uris": [WEB_URI],
            "client_name": "App",
            "client_name#ja-Jpan-JP": "\u30a2\u30d7\u30ea",
            "client_uri#de": "https://de.example.com/",
            "tos_uri#de": "https://de.example.com/agb",
            "logo_uri#en-GB": "https://app.example.com/logo-gb.png",
        },
        MetadataPolicy(),
        expected(
            redirect_uris=[WEB_URI],
            **{
                "client_name": "App",
                "client_name#ja-Jpan-JP": "\u30a2\u30d7\u30ea",
                "client_uri#de": "https://de.example.com/",
                "tos_uri#de": "https://de.example.com/agb",
                "logo_uri#en-GB": "https://app.example.com/logo-gb.png",
            },
        ),
    ),
    (
        "scope_deduplicated_and_spaces_collapsed",
        {"redirect_uris": [WEB_URI], "scope": " openid  profile openid "},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI], scope="openid profile"),
    ),
    (
        "scope_within_supported_set",
        {"redirect_uris": [WEB_URI], "scope": "openid email"},
        MetadataPolicy(supported_scopes=frozenset({"openid", "email", "profile"})),
        expected(redirect_uris=[WEB_URI], scope="openid email"),
    ),
    (
        "contacts_deduplicated",
        {
            "redirect_uris": [WEB_URI],
            "contacts": ["a@example.com", "b@example.org", "a@example.com"],
        },
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI], contacts=["a@example.com", "b@example.org"]),
    ),
    (
        "public_jwks_copied",
        {"redirect_uris": [WEB_URI], "jwks": {"keys": [PUBLIC_RSA, PUBLIC_EC], "extra": 1}},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI], jwks={"keys": [PUBLIC_RSA, PUBLIC_EC]}),
    ),
    (
        "default_max_age_bounds",
        {"redirect_uris": [WEB_URI], "default_max_age": 0},
        MetadataPolicy(),
        expected(redirect_uris=[WEB_URI], default_max_age=0),
    ),
    (
        "policy_narrowing_allows_public",
        {"redirect_uris": [WEB_URI], "token_endpoint_auth_method": "none"},
        MetadataPolicy(allowed_auth_methods=frozenset({"none"})),
        expected(redirect_uris=[WEB_URI], token_endpoint_auth_method="none"),
    ),
    (
        "policy_narrowing_substitutes_other_secret_method",
        {"redirect_uris": [WEB_URI]},
        MetadataPolicy(allowed_auth_methods=frozenset({"client_secret_basic", "none"})),
        expected(redirect_uris=[WEB_URI], token_endpoint_auth_method="client_secret_basic"),
    ),
    (
        "policy_limits_raised",
        {"redirect_uris": [f"https://app.example.com/{i}" for i in range(30)]},
        MetadataPolicy(max_redirect_uris=30),
        expected(redirect_uris=[f"https://app.example.com/{i}" for i in range(30)]),
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param(body, status, error, id=case)
        for case, body, status, error in INVALID_REGISTRATIONS
    ],
)
def test_invalid_registration_is_refused(body: object, status: int, error: str) -> None:
    assert status == 400
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata(body)
    assert caught.value.error == error
    assert caught.value.description
    if caught.value.field is not None:
        # The description names the offending member first, e.g. "redirect_uris[1]: ...".
        assert caught.value.description.startswith(caught.value.field)
    else:
        assert not isinstance(body, dict)


def test_invalid_table_is_large_json_and_unique() -> None:
    ids = [case for case, *_ in INVALID_REGISTRATIONS]
    assert len(ids) >= 60
    assert len(ids) == len(set(ids))
    for _case, body, status, error in INVALID_REGISTRATIONS:
        json.dumps(body, allow_nan=False)
        assert status == 400
        assert error in ERROR_CODES


@pytest.mark.parametrize(
    ("body", "policy", "want"),
    [pytest.param(body, policy, want, id=case) for case, body, policy, want in VALID_REGISTRATIONS],
)
def test_valid_registration_is_normalised(
    body: object, policy: MetadataPolicy, want: dict[str, Any]
) -> None:
    got = validate_client_metadata(body, policy)
    assert got == want
    # Normalised output is itself a valid request that normalises to the same thing.
    assert validate_client_metadata(got, policy) == got


def test_result_does_not_alias_input() -> None:
    body = {"redirect_uris": [WEB_URI], "jwks": {"keys": [dict(PUBLIC_RSA)]}}
    got = validate_client_metadata(body)
    got["redirect_uris"].append("https://other.example/")
    got["jwks"]["keys"][0]["kid"] = "changed"
    assert body == {"redirect_uris": [WEB_URI], "jwks": {"keys": [PUBLIC_RSA]}}


def test_error_carries_code_description_and_field() -> None:
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata({"redirect_uris": [WEB_URI, "https://app.example.com/x#y"]})
    assert caught.value.error == "invalid_redirect_uri"
    assert caught.value.description == "redirect_uris[1]: fragment not allowed"
    assert caught.value.field == "redirect_uris"
    assert str(caught.value) == caught.value.description


def test_private_key_value_is_not_echoed() -> None:
    secret = "VERY-SECRET-PRIVATE-EXPONENT"
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata(
            {"redirect_uris": [WEB_URI], "jwks": {"keys": [{**PUBLIC_RSA, "d": secret}]}}
        )
    assert secret not in caught.value.description


def test_policy_refuses_auth_method_and_names_allowed_set() -> None:
    policy = MetadataPolicy(allowed_auth_methods=frozenset({"client_secret_basic"}))
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata(
            {"redirect_uris": [WEB_URI], "token_endpoint_auth_method": "none"}, policy
        )
    assert caught.value.error == "invalid_client_metadata"
    assert caught.value.field == "token_endpoint_auth_method"
    assert "client_secret_basic" in caught.value.description


def test_policy_allowing_only_public_clients_requires_explicit_method() -> None:
    policy = MetadataPolicy(allowed_auth_methods=frozenset({"none"}))
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata({"redirect_uris": [WEB_URI]}, policy)
    assert caught.value.field == "token_endpoint_auth_method"


def test_policy_unsupported_scope() -> None:
    policy = MetadataPolicy(supported_scopes=frozenset({"openid"}))
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata({"redirect_uris": [WEB_URI], "scope": "openid admin"}, policy)
    assert caught.value.field == "scope"
    assert "admin" in caught.value.description


def test_policy_uri_length_limit() -> None:
    policy = MetadataPolicy(max_uri_length=30)
    validate_client_metadata({"redirect_uris": ["https://app.example.com/" + "a" * 6]}, policy)
    with pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata({"redirect_uris": ["https://app.example.com/" + "a" * 7]}, policy)
    assert caught.value.error == "invalid_redirect_uri"


def test_constants() -> None:
    assert (
        frozenset({"none", "client_secret_post", "client_secret_basic", "private_key_jwt"})
        == AUTH_METHODS
    )
    assert {"authorization_code", "implicit", "refresh_token", "client_credentials"} == GRANT_TYPES
    assert {"code", "token", "id_token", "id_token token"} == RESPONSE_TYPES


# ------------------------------------------------------------------ RFC 7592 §2.2 update

CLIENT_ID = "s6BhdRkqt3"


def test_update_full_replacement_with_defaults() -> None:
    body = {
        "client_id": CLIENT_ID,
        "redirect_uris": [WEB_URI],
        "client_name": "Renamed",
        "client_secret": "cf136dc3c1fc93f31185e5885805d",
    }
    metadata, secret = validate_update_request(body, CLIENT_ID)
    assert metadata == expected(redirect_uris=[WEB_URI], client_name="Renamed")
    assert secret == "cf136dc3c1fc93f31185e5885805d"


def test_update_without_secret() -> None:
    metadata, secret = validate_update_request(
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI], "client_secret": None}, CLIENT_ID
    )
    assert metadata == expected(redirect_uris=[WEB_URI])
    assert secret is None


def test_update_applies_policy() -> None:
    policy = MetadataPolicy(allowed_auth_methods=frozenset({"client_secret_basic"}))
    metadata, _ = validate_update_request(
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI]}, CLIENT_ID, policy
    )
    assert metadata["token_endpoint_auth_method"] == "client_secret_basic"


INVALID_UPDATES: list[tuple[str, object, str, str]] = [
    ("not_object", [CLIENT_ID], "invalid_client_metadata", ""),
    ("client_id_missing", {"redirect_uris": [WEB_URI]}, "invalid_client_metadata", "client_id"),
    (
        "client_id_other_client",
        {"client_id": "other", "redirect_uris": [WEB_URI]},
        "invalid_client_metadata",
        "client_id",
    ),
    (
        "client_id_number",
        {"client_id": 1, "redirect_uris": [WEB_URI]},
        "invalid_client_metadata",
        "client_id",
    ),
    (
        "client_id_case_differs",
        {"client_id": CLIENT_ID.lower(), "redirect_uris": [WEB_URI]},
        "invalid_client_metadata",
        "client_id",
    ),
    (
        "registration_access_token_sent",
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI], "registration_access_token": "t"},
        "invalid_client_metadata",
        "registration_access_token",
    ),
    (
        "registration_client_uri_sent",
        {
            "client_id": CLIENT_ID,
            "redirect_uris": [WEB_URI],
            "registration_client_uri": "https://op.example/register/s6BhdRkqt3",
        },
        "invalid_client_metadata",
        "registration_client_uri",
    ),
    (
        "client_secret_expires_at_sent",
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI], "client_secret_expires_at": 0},
        "invalid_client_metadata",
        "client_secret_expires_at",
    ),
    (
        "client_id_issued_at_sent_as_null",
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI], "client_id_issued_at": None},
        "invalid_client_metadata",
        "client_id_issued_at",
    ),
    (
        "client_secret_number",
        {"client_id": CLIENT_ID, "redirect_uris": [WEB_URI], "client_secret": 123},
        "invalid_client_metadata",
        "client_secret",
    ),
    (
        "redirect_uris_omitted",
        {"client_id": CLIENT_ID, "client_name": "App"},
        "invalid_redirect_uri",
        "redirect_uris",
    ),
    (
        "metadata_invalid_as_in_registration",
        {"client_id": CLIENT_ID, "redirect_uris": ["http://app.example.com/cb"]},
        "invalid_redirect_uri",
        "redirect_uris",
    ),
]


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [pytest.param(body, error, field, id=case) for case, body, error, field in INVALID_UPDATES],
)
def test_invalid_update_is_refused(body: object, error: str, field: str) -> None:
    with pytest.raises(ClientMetadataError) as caught:
        validate_update_request(body, CLIENT_ID)
    assert caught.value.error == error
    assert caught.value.field == (field or None)


@pytest.mark.parametrize(
    ("case", "body"),
    [(case, body) for case, body, _, _ in INVALID_REGISTRATIONS if isinstance(body, dict)],
)
def test_update_rejects_what_registration_rejects(case: str, body: dict[str, Any]) -> None:
    with pytest.raises(ClientMetadataError):
        validate_update_request({**body, "client_id": CLIENT_ID}, CLIENT_ID)


# ------------------------------------------------------------------ property tests

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: Python's json module accepts them
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

KNOWN_FIELDS = [
    "redirect_uris",
    "application_type",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_name#fr",
    "client_name#",
    "client_uri",
    "client_uri#de",
    "logo_uri",
    "logo_uri#en-US",
    "policy_uri",
    "tos_uri",
    "tos_uri#x",
    "scope",
    "contacts",
    "jwks",
    "jwks_uri",
    "id_token_signed_response_alg",
    "default_max_age",
    "require_auth_time",
    "software_id",
    "software_version",
    "client_id",
    "client_secret",
    "registration_access_token",
]

INTERESTING_STRINGS = [
    "",
    " ",
    "web",
    "native",
    "none",
    "RS256",
    "HS256",
    "openid profile",
    "ops@example.com",
    *sorted(AUTH_METHODS),
    *sorted(GRANT_TYPES),
    *sorted(RESPONSE_TYPES),
    "token id_token",
    WEB_URI,
    "https://app.example.com/logo.png",
    "https://www.example.com/",
    "https://other.example/logo.png",
    "http://127.0.0.1:8080/cb",
    "http://[::1]/cb",
    "http://localhost/cb",
    "https://localhost/cb",
    "http://app.example.com/cb",
    "com.example.app:/cb",
    "myapp://cb",
    "myapp:",
    "javascript:alert(1)",
    "https://[::1/cb",
    "https://[v1.x]/cb",
    "https://[127.0.0.1]/cb",
    "https://[fe80::1%25eth0]/cb",
    "https://x:0/cb",
    "https://x:/cb",
    "https://0x7f.1/cb",
    "https://%41.example/cb",
    "https://a.example/c%",
    "https:///cb",
    "https://a@b/cb",
    "https://a.example/cb#",
    "\ud800",
    "a\u202eb",
    "x" * 2001,
]

# URIs assembled from awkward parts, to reach every branch of the URI checks.
uri_like = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["https", "http", "HTTP", "myapp", "com.example.app", "data", "", "1x"]),
        st.sampled_from(["://", ":", ":/", ":///", "//"]),
        st.one_of(
            st.sampled_from(
                [
                    "app.example.com",
                    "www.example.com",
                    "127.0.0.1",
                    "127.0.0.2",
                    "[::1]",
                    "[::ffff:127.0.0.1]",
                    "[::1",
                    "[::1]x",
                    "[v1.x]",
                    "[fe80::1%25en0]",
                    "localhost",
                    "LOCALHOST",
                    "localhost.",
                    "dev.localhost",
                    "0.0.0.0",
                    "0x7f.1",
                    "2130706433",
                    "user@host",
                    "a b",
                    "ex\u00e4mple.com",
                    "-",
                    "",
                ]
            ),
            st.text(max_size=6),
        ),
        st.sampled_from(["", ":8080", ":", ":0", ":99999", ":x", ":443"]),
        st.one_of(
            st.sampled_from(["", "/", "/cb", "/cb?x=1", "/cb#f", "/%zz", "/[x]", "/a%2Fb"]),
            st.text(max_size=6),
        ),
    ),
)
interesting = st.one_of(st.sampled_from(INTERESTING_STRINGS), uri_like)
leaf_values = st.one_of(interesting, json_values)
jwk_like = st.dictionaries(st.sampled_from(["kty", "d", "n", "e", "k", "x5c", "ext"]), leaf_values)
plausible_values = st.one_of(
    json_values,
    interesting,
    st.lists(interesting, max_size=4),
    st.lists(leaf_values, max_size=4),
    st.fixed_dictionaries(
        {"keys": st.lists(st.one_of(leaf_values, st.just(PUBLIC_RSA), jwk_like))}
    ),
    st.sampled_from([0, -1, 1.5, True, False, 10**30, 315360000, 315360001]),
)
known_field_bodies = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(max_size=12)), plausible_values, max_size=10
)
mutated_valid_bodies = st.builds(
    lambda base, key, value, drop: {k: v for k, v in {**base, key: value}.items() if k != drop},
    st.sampled_from([FULL_WEB_BODY, {"redirect_uris": [WEB_URI]}]),
    st.sampled_from(KNOWN_FIELDS),
    plausible_values,
    st.one_of(st.none(), st.sampled_from(KNOWN_FIELDS)),
)
structured_bodies = st.fixed_dictionaries(
    {"redirect_uris": st.lists(interesting, min_size=1, max_size=3)},
    optional={
        "application_type": st.sampled_from(["web", "native"]),
        "token_endpoint_auth_method": st.sampled_from(sorted(AUTH_METHODS)),
        "grant_types": st.lists(st.sampled_from(sorted(GRANT_TYPES)), max_size=3),
        "response_types": st.lists(
            st.sampled_from([*sorted(RESPONSE_TYPES), "token id_token"]), max_size=3
        ),
        "client_name": leaf_values,
        "client_name#fr": leaf_values,
        "client_uri": interesting,
        "logo_uri": interesting,
        "policy_uri#de": interesting,
        "tos_uri": interesting,
        "scope": st.one_of(st.text(max_size=20), st.sampled_from(["openid", "openid profile"])),
        "contacts": st.lists(st.one_of(interesting, st.emails()), max_size=3),
        "jwks": plausible_values,
        "jwks_uri": interesting,
        "default_max_age": plausible_values,
        "require_auth_time": st.one_of(st.booleans(), leaf_values),
        "software_id": leaf_values,
    },
)
any_body = st.one_of(json_values, known_field_bodies, mutated_valid_bodies, structured_bodies)

policies = st.builds(
    MetadataPolicy,
    allowed_auth_methods=st.frozensets(st.sampled_from(sorted(AUTH_METHODS))),
    supported_scopes=st.one_of(st.none(), st.frozensets(st.sampled_from(["openid", "profile"]))),
    max_redirect_uris=st.integers(0, 25),
    max_uri_length=st.integers(0, 3000),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=any_body, policy=st.one_of(st.just(MetadataPolicy()), policies))
def test_only_client_metadata_error_is_raised(body: object, policy: MetadataPolicy) -> None:
    try:
        result = validate_client_metadata(body, policy)
    except ClientMetadataError as exc:
        assert exc.error in ERROR_CODES
        assert isinstance(exc.description, str)
        assert exc.description
        return
    # Accepted metadata is storable (strict JSON, UTF-8 encodable) and stable.
    json.dumps(result, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert validate_client_metadata(result, policy) == result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=any_body, client_id=st.one_of(st.just(CLIENT_ID), st.text(max_size=5)))
def test_update_only_raises_client_metadata_error(body: object, client_id: str) -> None:
    if isinstance(body, dict):
        body = {**body, "client_id": client_id}
    try:
        metadata, secret = validate_update_request(body, client_id)
    except ClientMetadataError as exc:
        assert exc.error in ERROR_CODES
        return
    assert secret is None or isinstance(secret, str)
    json.dumps(metadata, allow_nan=False)


def test_logout_metadata_is_registered() -> None:
    """Issue 22: RP-Initiated, Back-Channel and Front-Channel Logout members, through the one
    schema; http only on loopback for the logout URIs."""
    metadata = validate_client_metadata(
        {
            "redirect_uris": ["https://app.example.com/callback"],
            "post_logout_redirect_uris": ["https://app.example.com/bye"],
            "backchannel_logout_uri": "http://127.0.0.1:9000/backchannel",
            "backchannel_logout_session_required": True,
            "frontchannel_logout_uri": "https://app.example.com/frontchannel?x=1",
            "frontchannel_logout_session_required": False,
        }
    )
    assert metadata["post_logout_redirect_uris"] == ["https://app.example.com/bye"]
    assert metadata["backchannel_logout_uri"] == "http://127.0.0.1:9000/backchannel"
    assert metadata["backchannel_logout_session_required"] is True
    assert metadata["frontchannel_logout_uri"] == "https://app.example.com/frontchannel?x=1"
    assert metadata["frontchannel_logout_session_required"] is False
    assert "post_logout_redirect_uris" not in validate_client_metadata(
        {"redirect_uris": ["https://app.example.com/callback"]}
    )
