"""Registration bodies that must be refused with an RFC 7591 §3.2.2 error.

Each row is (case id, JSON body, expected HTTP status, expected `error` code). Bodies hold only
JSON-serialisable values, so the same table serves the unit tests of the metadata validator and
the HTTP tests that POST these bodies to the registration endpoint. Every body is valid apart
from the one defect its id names.
"""

from __future__ import annotations

from typing import Any

IRU = "invalid_redirect_uri"
ICM = "invalid_client_metadata"

WEB_URI = "https://app.example.com/cb"
NATIVE_LOOPBACK = "http://127.0.0.1:8080/cb"

# A public JWK (RFC 7517 appendix A.1 shape, shortened modulus).
_PUBLIC_RSA: dict[str, Any] = {
    "kty": "RSA",
    "kid": "k1",
    "use": "sig",
    "n": "0vx7agoebG",
    "e": "AQAB",
}


def _web(**members: Any) -> dict[str, Any]:
    """A valid web registration with `members` added or replaced."""
    return {"redirect_uris": [WEB_URI], **members}


def _native(*uris: str, **members: Any) -> dict[str, Any]:
    """A valid public native registration using `uris`."""
    return {
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": list(uris),
        **members,
    }


def _uri(uri: str) -> dict[str, Any]:
    return {"redirect_uris": [uri]}


INVALID_REGISTRATIONS: list[tuple[str, object, int, str]] = [
    # --- body shape
    ("body_array", [], 400, ICM),
    ("body_array_of_object", [_web()], 400, ICM),
    ("body_string", "redirect_uris", 400, ICM),
    ("body_number", 42, 400, ICM),
    ("body_float", 1.5, 400, ICM),
    ("body_null", None, 400, ICM),
    ("body_true", True, 400, ICM),
    # --- redirect_uris presence and type
    ("redirect_uris_missing", {}, 400, IRU),
    ("redirect_uris_missing_with_other_fields", {"client_name": "App"}, 400, IRU),
    ("redirect_uris_null", {"redirect_uris": None}, 400, IRU),
    ("redirect_uris_empty", {"redirect_uris": []}, 400, IRU),
    ("redirect_uris_string", {"redirect_uris": WEB_URI}, 400, IRU),
    ("redirect_uris_object", {"redirect_uris": {"0": WEB_URI}}, 400, IRU),
    ("redirect_uris_number", {"redirect_uris": 1}, 400, IRU),
    ("redirect_uris_bool", {"redirect_uris": True}, 400, IRU),
    ("redirect_uris_item_number", {"redirect_uris": [WEB_URI, 42]}, 400, IRU),
    ("redirect_uris_item_null", {"redirect_uris": [None]}, 400, IRU),
    ("redirect_uris_item_array", {"redirect_uris": [[WEB_URI]]}, 400, IRU),
    ("redirect_uris_item_empty_string", {"redirect_uris": [""]}, 400, IRU),
    # --- redirect URI syntax
    ("redirect_uri_fragment", _uri("https://app.example.com/cb#section"), 400, IRU),
    ("redirect_uri_empty_fragment", _uri("https://app.example.com/cb#"), 400, IRU),
    ("redirect_uri_userinfo", _uri("https://user:pass@app.example.com/cb"), 400, IRU),
    ("redirect_uri_userinfo_user_only", _uri("https://user@app.example.com/cb"), 400, IRU),
    ("redirect_uri_userinfo_native_loopback", _native("http://u@127.0.0.1/cb"), 400, IRU),
    ("redirect_uri_relative_path", _uri("/cb"), 400, IRU),
    ("redirect_uri_relative_word", _uri("callback"), 400, IRU),
    ("redirect_uri_scheme_relative", _uri("//app.example.com/cb"), 400, IRU),
    ("redirect_uri_https_without_host", _uri("https:///cb"), 400, IRU),
    ("redirect_uri_https_opaque", _uri("https:app.example.com/cb"), 400, IRU),
    ("redirect_uri_port_out_of_range", _uri("https://app.example.com:99999/cb"), 400, IRU),
    ("redirect_uri_port_not_numeric", _uri("https://app.example.com:http/cb"), 400, IRU),
    ("redirect_uri_backslash", _uri("https://app.example.com\\.evil.example/cb"), 400, IRU),
    ("redirect_uri_non_ascii_host", _uri("https://\u0430pp.example.com/cb"), 400, IRU),
    ("redirect_uri_bad_percent_encoding", _uri("https://app.example.com/c%zzb"), 400, IRU),
    ("redirect_uri_empty_host_label", _uri("https://app..example.com/cb"), 400, IRU),
    ("redirect_uri_bracket_in_path", _uri("https://app.example.com/cb[0]"), 400, IRU),
    ("redirect_uri_ipvfuture_host", _native("http://[v1.x]/cb"), 400, IRU),
    ("redirect_uri_ipv6_zone_id", _uri("https://[fe80::1%25en0]/cb"), 400, IRU),
    ("redirect_uri_ipv6_trailing_junk", _native("http://[::1]evil/cb"), 400, IRU),
    ("redirect_uri_integer_ipv4_host", _native("http://2130706433/cb"), 400, IRU),
    ("redirect_uri_private_use_empty", _native("com.example.app:"), 400, IRU),
    # --- control characters and whitespace
    ("redirect_uri_newline", _uri("https://app.example.com/c\nb"), 400, IRU),
    ("redirect_uri_carriage_return", _uri("https://app.example.com/cb\r"), 400, IRU),
    ("redirect_uri_tab", _uri("https://app.exa\tmple.com/cb"), 400, IRU),
    ("redirect_uri_nul", _uri("https://app.example.com/cb\u0000"), 400, IRU),
    ("redirect_uri_space", _uri("https://app.example.com/c b"), 400, IRU),
    ("redirect_uri_leading_space", _uri(" https://app.example.com/cb"), 400, IRU),
    ("redirect_uri_del", _uri("https://app.example.com/cb\u007f"), 400, IRU),
    # --- forbidden schemes (native, so the scheme itself is the only defect)
    ("scheme_javascript", _native("javascript:alert(1)"), 400, IRU),
    ("scheme_javascript_mixed_case", _native("JavaScript:alert(1)"), 400, IRU),
    ("scheme_javascript_comment", _native("javascript://app.example.com/%0aalert(1)"), 400, IRU),
    ("scheme_data", _native("data:text/html,hello"), 400, IRU),
    ("scheme_file", _native("file:///etc/passwd"), 400, IRU),
    ("scheme_vbscript", _native("vbscript:msgbox(1)"), 400, IRU),
    ("scheme_blob", _native("blob:https://app.example.com/0b6ee4a1"), 400, IRU),
    ("scheme_about", _native("about:blank"), 400, IRU),
    ("scheme_javascript_web", _uri("javascript:alert(1)"), 400, IRU),
    # --- web application rules (OIDC DCR §2)
    ("web_http_non_loopback", _uri("http://app.example.com/cb"), 400, IRU),
    ("web_http_private_ip", _uri("http://10.0.0.5/cb"), 400, IRU),
    # `*.localhost` is not loopback (oidc_common.redirect_uris); all of 127.0.0.0/8 is.
    ("web_http_localhost_subdomain", _uri("http://dev.localhost/cb"), 400, IRU),
    ("web_http_unspecified_address", _uri("http://0.0.0.0/cb"), 400, IRU),
    ("web_custom_scheme_default_type", _uri("com.example.app:/cb"), 400, IRU),
    (
        "web_custom_scheme_explicit_type",
        {"application_type": "web", "redirect_uris": ["myapp://cb"]},
        400,
        IRU,
    ),
    (
        "web_implicit_http_localhost",
        {"redirect_uris": ["http://localhost:8080/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    (
        "web_implicit_http_127",
        {"redirect_uris": ["http://127.0.0.1/cb"], "response_types": ["id_token"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_localhost",
        {"redirect_uris": ["https://localhost/cb"], "response_types": ["id_token token"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_ipv6_loopback",
        {"redirect_uris": ["https://[::1]:8443/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_localhost_subdomain",
        {"redirect_uris": ["https://dev.localhost/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    (
        "web_implicit_second_uri_localhost",
        {"redirect_uris": [WEB_URI, "https://localhost/cb"], "response_types": ["token"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_127_0_0_2",
        {"redirect_uris": ["https://127.0.0.2/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_ipv4_mapped_loopback",
        {"redirect_uris": ["https://[::ffff:127.0.0.1]/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    (
        "web_implicit_https_unspecified_address",
        {"redirect_uris": ["https://0.0.0.0/cb"], "grant_types": ["implicit"]},
        400,
        IRU,
    ),
    # --- native application rules (RFC 8252 §7)
    ("native_http_non_loopback", _native("http://app.example.com/cb"), 400, IRU),
    ("native_http_private_ip", _native("http://192.168.1.10:8080/cb"), 400, IRU),
    ("native_http_localhost_lookalike", _native("http://localhost.evil.example/cb"), 400, IRU),
    ("native_http_localhost_subdomain", _native("http://app.localhost:8080/cb"), 400, IRU),
    # --- list limits
    (
        "redirect_uris_too_many",
        {"redirect_uris": [f"https://app.example.com/cb{i}" for i in range(21)]},
        400,
        IRU,
    ),
    ("redirect_uri_too_long", _uri("https://app.example.com/" + "a" * 2000), 400, IRU),
    ("redirect_uris_duplicate", {"redirect_uris": [WEB_URI, WEB_URI]}, 400, IRU),
    # --- application_type
    ("application_type_unknown", _web(application_type="desktop"), 400, ICM),
    ("application_type_wrong_case", _web(application_type="Web"), 400, ICM),
    ("application_type_number", _web(application_type=1), 400, ICM),
    ("application_type_array", _web(application_type=["web"]), 400, ICM),
    # --- token_endpoint_auth_method
    ("auth_method_unknown", _web(token_endpoint_auth_method="private_key_jwt"), 400, ICM),
    ("auth_method_wrong_case", _web(token_endpoint_auth_method="NONE"), 400, ICM),
    ("auth_method_number", _web(token_endpoint_auth_method=0), 400, ICM),
    ("auth_method_array", _web(token_endpoint_auth_method=["none"]), 400, ICM),
    # --- grant_types / response_types (RFC 7591 §2.1)
    (
        "inconsistent_code_grant_token_response",
        _web(grant_types=["authorization_code"], response_types=["token"]),
        400,
        ICM,
    ),
    (
        "inconsistent_implicit_grant_code_response",
        _web(grant_types=["implicit"], response_types=["code"]),
        400,
        ICM,
    ),
    (
        "inconsistent_implicit_without_implicit_response",
        _web(grant_types=["authorization_code", "implicit"], response_types=["code"]),
        400,
        ICM,
    ),
    (
        "inconsistent_code_response_client_credentials",
        _web(grant_types=["client_credentials"], response_types=["code"]),
        400,
        ICM,
    ),
    ("grant_type_unknown_password", _web(grant_types=["password"]), 400, ICM),
    (
        "grant_type_unknown_device_code",
        _web(grant_types=["urn:ietf:params:oauth:grant-type:device_code"]),
        400,
        ICM,
    ),
    ("grant_type_wrong_case", _web(grant_types=["Authorization_Code"]), 400, ICM),
    ("response_type_unknown_hybrid", _web(response_types=["code id_token"]), 400, ICM),
    ("response_type_unknown_none", _web(response_types=["none"]), 400, ICM),
    ("grant_types_empty", _web(grant_types=[]), 400, ICM),
    ("response_types_empty_alone", _web(response_types=[]), 400, ICM),
    ("grant_types_string", _web(grant_types="authorization_code"), 400, ICM),
    ("grant_types_item_number", _web(grant_types=[1]), 400, ICM),
    ("grant_types_object", _web(grant_types={"authorization_code": True}), 400, ICM),
    ("response_types_string", _web(response_types="code"), 400, ICM),
    ("response_types_item_null", _web(response_types=[None]), 400, ICM),
    ("refresh_token_alone", _web(grant_types=["refresh_token"]), 400, ICM),
    (
        "refresh_token_with_implicit_only",
        _web(grant_types=["implicit", "refresh_token"]),
        400,
        ICM,
    ),
    (
        "client_credentials_public_client",
        _web(grant_types=["client_credentials"], token_endpoint_auth_method="none"),
        400,
        ICM,
    ),
    # --- client_name and language tags (OIDC DCR §2.1)
    ("client_name_too_long", _web(client_name="n" * 201), 400, ICM),
    ("client_name_empty", _web(client_name=""), 400, ICM),
    ("client_name_blank", _web(client_name="   "), 400, ICM),
    ("client_name_number", _web(client_name=42), 400, ICM),
    ("client_name_array", _web(client_name=["App"]), 400, ICM),
    ("client_name_control_char", _web(client_name="App\u0007"), 400, ICM),
    ("client_name_newline", _web(client_name="App\nOther"), 400, ICM),
    ("client_name_bidi_override", _web(client_name="App\u202egnp.exe"), 400, ICM),
    # Issue 21: format (Cf) and default-ignorable characters make names that look alike.
    ("client_name_zero_width_space", _web(client_name="Acme\u200b Corp"), 400, ICM),
    ("client_name_rtl_mark", _web(client_name="Acme\u200f Corp"), 400, ICM),
    ("client_name_arabic_letter_mark", _web(client_name="Acme\u061c Corp"), 400, ICM),
    ("client_name_soft_hyphen", _web(client_name="Acme\u00ad Corp"), 400, ICM),
    ("client_name_word_joiner", _web(client_name="Acme\u2060 Corp"), 400, ICM),
    ("client_name_bom", _web(client_name="Acme\ufeff Corp"), 400, ICM),
    ("client_name_mongolian_vowel_separator", _web(client_name="Acme\u180e Corp"), 400, ICM),
    ("client_name_variation_selector", _web(client_name="Acme\ufe0f Corp"), 400, ICM),
    ("client_name_tag_character", _web(client_name="Acme\U000e0041 Corp"), 400, ICM),
    ("client_name_hangul_filler", _web(client_name="Acme\u3164 Corp"), 400, ICM),
    ("client_name_lang_zero_width", _web(**{"client_name#fr": "Ac\u200bme"}), 400, ICM),
    ("software_id_word_joiner", _web(software_id="agent\u2060kit"), 400, ICM),
    ("client_name_lang_too_long", _web(**{"client_name#fr": "n" * 201}), 400, ICM),
    ("client_name_lang_number", _web(**{"client_name#de": 1}), 400, ICM),
    ("client_name_empty_tag", _web(**{"client_name#": "App"}), 400, ICM),
    ("client_name_tag_starts_with_digit", _web(**{"client_name#1en": "App"}), 400, ICM),
    ("client_name_tag_bad_chars", _web(**{"client_name#en_US": "App"}), 400, ICM),
    (
        "client_name_tag_repeated_other_case",
        _web(**{"client_name#fr": "Appli", "client_name#FR": "Appli 2"}),
        400,
        ICM,
    ),
    ("client_name_tag_too_long", _web(**{"client_name#" + "a" * 36: "App"}), 400, ICM),
    # --- scope (RFC 6749 §3.3)
    ("scope_too_long", _web(scope=" ".join(["s" * 9] * 100) + " x"), 400, ICM),
    ("scope_double_quote", _web(scope='openid "profile"'), 400, ICM),
    ("scope_backslash", _web(scope="openid a\\b"), 400, ICM),
    ("scope_non_ascii", _web(scope="openid pr\u00f6file"), 400, ICM),
    ("scope_tab", _web(scope="openid\tprofile"), 400, ICM),
    ("scope_empty", _web(scope=""), 400, ICM),
    ("scope_spaces_only", _web(scope="   "), 400, ICM),
    ("scope_array", _web(scope=["openid", "profile"]), 400, ICM),
    ("scope_number", _web(scope=1), 400, ICM),
    # --- contacts
    ("contacts_too_many", _web(contacts=[f"c{i}@example.com" for i in range(11)]), 400, ICM),
    ("contacts_string", _web(contacts="admin@example.com"), 400, ICM),
    ("contacts_not_email", _web(contacts=["not-an-email"]), 400, ICM),
    ("contacts_no_domain_dot", _web(contacts=["admin@localhost"]), 400, ICM),
    ("contacts_too_long", _web(contacts=["a" * 309 + "@example.com"]), 400, ICM),
    ("contacts_empty_string", _web(contacts=[""]), 400, ICM),
    ("contacts_item_number", _web(contacts=[7]), 400, ICM),
    ("contacts_newline_injection", _web(contacts=["a@example.com\nBcc: x@evil.example"]), 400, ICM),
    # --- client_uri / logo_uri / policy_uri / tos_uri (RFC 7591 §5)
    ("logo_uri_other_host", _web(logo_uri="https://bank.example/logo.png"), 400, ICM),
    ("logo_uri_http", _web(logo_uri="http://app.example.com/logo.png"), 400, ICM),
    ("logo_uri_number", _web(logo_uri=12), 400, ICM),
    ("logo_uri_fragment", _web(logo_uri="https://app.example.com/logo.png#x"), 400, ICM),
    ("logo_uri_javascript", _web(logo_uri="javascript:alert(1)"), 400, ICM),
    ("logo_uri_userinfo", _web(logo_uri="https://u@app.example.com/logo.png"), 400, ICM),
    ("logo_uri_data", _web(logo_uri="data:image/png;base64,iVBORw0KGgo="), 400, ICM),
    ("logo_uri_lang_other_host", _web(**{"logo_uri#fr": "https://bank.example/l.png"}), 400, ICM),
    ("policy_uri_other_host", _web(policy_uri="https://bank.example/privacy"), 400, ICM),
    ("tos_uri_other_host", _web(tos_uri="https://bank.example/tos"), 400, ICM),
    ("tos_uri_subdomain_is_other_host", _web(tos_uri="https://www.app.example.com/t"), 400, ICM),
    ("logo_uri_without_host", _web(logo_uri="https:logo.png"), 400, ICM),
    ("client_uri_http", _web(client_uri="http://app.example.com/"), 400, ICM),
    ("client_uri_relative", _web(client_uri="/about"), 400, ICM),
    ("client_uri_array", _web(client_uri=["https://app.example.com/"]), 400, ICM),
    ("client_uri_too_long", _web(client_uri="https://app.example.com/" + "a" * 2000), 400, ICM),
    # --- jwks / jwks_uri (RFC 7591 §2)
    (
        "jwks_and_jwks_uri",
        _web(jwks={"keys": [_PUBLIC_RSA]}, jwks_uri="https://app.example.com/jwks.json"),
        400,
        ICM,
    ),
    ("jwks_string", _web(jwks='{"keys": []}'), 400, ICM),
    ("jwks_array", _web(jwks=[_PUBLIC_RSA]), 400, ICM),
    ("jwks_without_keys", _web(jwks={}), 400, ICM),
    ("jwks_empty_keys", _web(jwks={"keys": []}), 400, ICM),
    ("jwks_keys_object", _web(jwks={"keys": _PUBLIC_RSA}), 400, ICM),
    ("jwks_key_string", _web(jwks={"keys": ["RSA"]}), 400, ICM),
    ("jwks_key_without_kty", _web(jwks={"keys": [{"n": "0vx7agoebG", "e": "AQAB"}]}), 400, ICM),
    ("jwks_key_kty_number", _web(jwks={"keys": [{"kty": 1}]}), 400, ICM),
    ("jwks_key_kty_empty", _web(jwks={"keys": [{"kty": ""}]}), 400, ICM),
    ("jwks_too_many_keys", _web(jwks={"keys": [_PUBLIC_RSA] * 11}), 400, ICM),
    (
        "jwks_private_rsa_key",
        _web(jwks={"keys": [{**_PUBLIC_RSA, "d": "X4cTteJY", "p": "83i-7I"}]}),
        400,
        ICM,
    ),
    (
        "jwks_private_ec_key",
        _web(jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": "f8", "y": "x_", "d": "jp"}]}),
        400,
        ICM,
    ),
    (
        "jwks_symmetric_key",
        _web(jwks={"keys": [{"kty": "oct", "k": "GawgguFyGrWKav7AX4VKUg"}]}),
        400,
        ICM,
    ),
    (
        "jwks_key_nested_object_member",
        _web(jwks={"keys": [{**_PUBLIC_RSA, "x": {"a": 1}}]}),
        400,
        ICM,
    ),
    ("jwks_uri_http", _web(jwks_uri="http://app.example.com/jwks.json"), 400, ICM),
    ("jwks_uri_number", _web(jwks_uri=443), 400, ICM),
    # --- id_token_signed_response_alg
    ("id_token_alg_none", _web(id_token_signed_response_alg="none"), 400, ICM),
    ("id_token_alg_hs256", _web(id_token_signed_response_alg="HS256"), 400, ICM),
    ("id_token_alg_wrong_case", _web(id_token_signed_response_alg="rs256"), 400, ICM),
    ("id_token_alg_number", _web(id_token_signed_response_alg=256), 400, ICM),
    # --- default_max_age
    ("default_max_age_true", _web(default_max_age=True), 400, ICM),
    ("default_max_age_false", _web(default_max_age=False), 400, ICM),
    ("default_max_age_float", _web(default_max_age=1.5), 400, ICM),
    ("default_max_age_negative", _web(default_max_age=-1), 400, ICM),
    ("default_max_age_string", _web(default_max_age="3600"), 400, ICM),
    ("default_max_age_too_large", _web(default_max_age=10 * 366 * 24 * 3600), 400, ICM),
    # --- require_auth_time
    ("require_auth_time_string", _web(require_auth_time="yes"), 400, ICM),
    ("require_auth_time_number", _web(require_auth_time=1), 400, ICM),
    # --- software_id / software_version
    ("software_id_number", _web(software_id=42), 400, ICM),
    ("software_id_empty", _web(software_id=""), 400, ICM),
    ("software_id_too_long", _web(software_id="s" * 256), 400, ICM),
    ("software_version_array", _web(software_version=["1.0"]), 400, ICM),
    ("software_version_control_char", _web(software_version="1.0\u0000"), 400, ICM),
    # --- logout metadata (issue 22: RP-Initiated, Back- and Front-Channel Logout 1.0)
    ("post_logout_not_array", _web(post_logout_redirect_uris="https://app.example.com/"), 400, ICM),
    (
        "post_logout_fragment",
        _web(post_logout_redirect_uris=["https://app.example.com/#x"]),
        400,
        ICM,
    ),
    (
        "post_logout_http_web",
        _web(post_logout_redirect_uris=["http://app.example.com/bye"]),
        400,
        ICM,
    ),
    ("post_logout_javascript", _web(post_logout_redirect_uris=["javascript:alert(1)"]), 400, ICM),
    (
        "post_logout_duplicate",
        _web(post_logout_redirect_uris=["https://app.example.com/bye"] * 2),
        400,
        ICM,
    ),
    ("backchannel_http_public", _web(backchannel_logout_uri="http://app.example.com/bc"), 400, ICM),
    ("backchannel_fragment", _web(backchannel_logout_uri="https://app.example.com/bc#f"), 400, ICM),
    ("backchannel_not_url", _web(backchannel_logout_uri="not a url"), 400, ICM),
    ("backchannel_session_string", _web(backchannel_logout_session_required="yes"), 400, ICM),
    (
        "frontchannel_other_origin",
        _web(frontchannel_logout_uri="https://elsewhere.example.com/fc"),
        400,
        ICM,
    ),
    ("frontchannel_session_number", _web(frontchannel_logout_session_required=1), 400, ICM),
    # --- private_key_jwt (RFC 7523, OIDC Core §9): keys registered, asymmetric algorithms
    ("private_key_jwt_without_keys", _web(token_endpoint_auth_method="private_key_jwt"), 400, ICM),
    (
        "private_key_jwt_with_both_keys",
        _web(
            token_endpoint_auth_method="private_key_jwt",
            jwks_uri="https://app.example.com/jwks.json",
            jwks={"keys": [{"kty": "RSA", "n": "x" * 64, "e": "AQAB"}]},
        ),
        400,
        ICM,
    ),
    ("assertion_alg_hmac", _web(token_endpoint_auth_signing_alg="HS256"), 400, ICM),
    ("assertion_alg_none", _web(token_endpoint_auth_signing_alg="none"), 400, ICM),
    (
        "client_secret_jwt_unsupported",
        _web(token_endpoint_auth_method="client_secret_jwt"),
        400,
        ICM,
    ),
]
