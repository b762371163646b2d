"""Arbitrary JSON at POST /oidc/register never yields a 500 or an undocumented answer."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc_common.client_metadata import CLIENT_METADATA_FIELDS
from tests.support.registration import Dcr

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=25,
)
FIELDS = st.sampled_from([*sorted(CLIENT_METADATA_FIELDS), "client_name#fr"])
URIS = st.sampled_from(
    [
        "https://app.example/cb",
        "http://localhost:3000/cb",
        "com.example.app:/cb",
        "javascript:alert(1)",
        "https://app.example/cb#frag",
        "",
        "http://[::1]/cb",
    ]
) | st.text(max_size=30)
METADATA = st.fixed_dictionaries(
    {"redirect_uris": st.lists(URIS, max_size=3)},
    optional={"client_name": st.text(max_size=30)},
).flatmap(
    lambda base: st.dictionaries(FIELDS, JSON, max_size=6).map(lambda extra: {**base, **extra})
)

DOCUMENTED = {201, 400, 415}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON | METADATA)
async def test_arbitrary_json_never_breaks_registration(shared_open_dcr: Dcr, body: Any) -> None:
    status, answer, _ = await shared_open_dcr.register(None, raw=json.dumps(body).encode())
    assert status in DOCUMENTED, (status, answer)
    assert isinstance(answer, dict)
    if status == 201:
        assert answer["client_id"] and answer["registration_access_token"]
    else:
        assert answer["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}
        assert isinstance(answer["error_description"], str)
