"""The running registration service against its own OpenAPI document, property-based.

Schemathesis generates requests, valid and invalid, for every operation of the document the
service serves at `GET /openapi.yaml`; each one goes to the real service (aiohttp on a real
127.0.0.1 port, real MongoDB, Redis and RabbitMQ) and its answer must not be a 500, must have
a status documented for the operation, and must match the documented content type, headers
and body schema.

The client configuration (RFC 7592) and Management API operations are exercised with real
clients and real credentials part of the time (and with wrong, missing or under-scoped ones
the rest), so their success answers are checked too, not only their refusals.

Schemathesis calls are synchronous (requests) while the service runs on this test's event
loop, so every property runs in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registration_service.openapi import OPENAPI_PATH, openapi_document, openapi_route
from tests.support.registration import HOST, ISSUER, Dcr
from tests.support.tokens import management_token

SCHEMA = schemathesis.openapi.from_file(openapi_document().decode())
OPERATIONS = {
    result.ok().label: result.ok() for result in SCHEMA.get_all_operations() if result.ok()
}
MAX_EXAMPLES = 40
REQUEST_TIMEOUT = 10
UNKNOWN_HOST = "nobody.example"
PADDING = "x" * (70 * 1024)  # above the 64 KiB body limit
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def call_and_check(
    target: Target, case: Case, headers: dict[str, str], **extra: Any
) -> requests.Response:
    """Send `case` to the running service and check the answer against the document."""
    response = case.call(
        base_url=target.base_url,
        session=target.session,
        headers=headers,
        timeout=REQUEST_TIMEOUT,
        **extra,
    )
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


REGISTER = "POST /oidc/register"
CONFIGURATION = "/oidc/register/{client_id}"
MANAGEMENT_ONE = "/api/v2/clients/{client_id}"


def _examples(label: str) -> list[dict[str, Any]]:
    """The request body examples the document gives for an operation."""
    method, path = label.split(" ", 1)
    operation = SCHEMA.raw_schema["paths"][path][method.lower()]
    content = operation["requestBody"]["content"]["application/json"]
    return [example["value"] for example in content["examples"].values()]


REGISTER_EXAMPLES = _examples(REGISTER)
PATCH_EXAMPLES = _examples(f"PATCH {MANAGEMENT_ONE}")


# ------------------------------------------------------------------------------ the target


@dataclass
class Client:
    client_id: str
    registration_access_token: str


@dataclass
class Target:
    """The service under test and the credentials and clients the properties draw from."""

    base_url: str
    app: web.Application
    session: requests.Session
    tokens: dict[str, str]  # Management API Authorization values, by kind
    management_client_id: str
    own: Client  # authenticates to its own configuration endpoint; replaced when deleted
    other: Client  # its token is tried on `own`'s endpoint
    managed: list[str] = field(default_factory=list)  # for the Management API

    def register(self, body: dict[str, Any] | None = None) -> Client:
        response = self.session.post(
            f"{self.base_url}/oidc/register",
            json=body or {"client_name": "Fuzz", "redirect_uris": ["https://fuzz.example/cb"]},
            headers={"Host": HOST},
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 201, response.text
        answer = response.json()
        return Client(answer["client_id"], answer["registration_access_token"])


@pytest.fixture(scope="module")
async def target(shared_open_dcr: Dcr) -> AsyncIterator[Target]:
    dcr = shared_open_dcr
    settings_, tenant_id = dcr.settings, dcr.tenant_id
    tokens = {
        "full": dcr.management_headers["Authorization"],
        "read_only": "Bearer "
        + await management_token(settings_, tenant_id, ISSUER, scopes=("read:clients",)),
        "no_scope": "Bearer "
        + await management_token(settings_, tenant_id, ISSUER, scopes=("read:users",)),
        "expired": "Bearer "
        + await management_token(
            settings_, tenant_id, ISSUER, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
        ),
        "wrong_audience": "Bearer "
        + await management_token(settings_, tenant_id, ISSUER, aud="https://elsewhere.example/"),
        "garbage": "Bearer not.a.jwt",
        "basic": "Basic dXNlcjpwYXNz",
    }
    listing = await dcr.registration.get("/api/v2/clients", headers=dcr.management_headers)
    assert listing.status == 200, await listing.text()
    (management_client_id,) = [
        client["client_id"] for client in await listing.json() if client["is_first_party"]
    ]
    session = requests.Session()
    base_url = str(dcr.registration.make_url("")).rstrip("/")

    def prepare() -> Target:
        placeholder = Client("", "")
        probe = Target(
            base_url,
            dcr.registration_app,
            session,
            tokens,
            management_client_id,
            placeholder,
            placeholder,
        )
        probe.own, probe.other = probe.register(), probe.register()
        probe.managed = [probe.register(example).client_id for example in REGISTER_EXAMPLES]
        return probe

    prepared = await asyncio.to_thread(prepare)
    yield prepared
    session.close()


# ---------------------------------------------------------------------- per-request tailoring


Draw = Callable[[st.SearchStrategy[Any]], Any]
Tailor = Callable[[Target, Case, Draw], dict[str, str]]
After = Callable[[Target, Case, Any], None]


def _host(draw: Draw) -> str:
    # Mostly the tenant; sometimes a host that is no tenant (404 in the endpoint's format).
    return UNKNOWN_HOST if draw(st.integers(0, 9)) == 9 else HOST


def _without_authorization(case: Case) -> None:
    if case.headers:
        for name in [name for name in case.headers if name.lower() == "authorization"]:
            del case.headers[name]


def _json_body_variants(case: Case, draw: Draw, headers: dict[str, str]) -> None:
    """Now and then an oversized body, or a Content-Type that is not JSON."""
    variant = draw(st.integers(0, 9))
    if variant == 8:
        base = case.body if isinstance(case.body, dict) else {}
        case.body = {**base, "padding": PADDING}
    elif variant == 9:
        headers["Content-Type"] = draw(
            st.sampled_from(["text/plain", "application/x-www-form-urlencoded"])
        )


def tailor_register(target: Target, case: Case, draw: Draw) -> dict[str, str]:
    headers = {"Host": _host(draw)}
    if draw(st.booleans()):
        case.body = copy.deepcopy(draw(st.sampled_from(REGISTER_EXAMPLES)))
    _json_body_variants(case, draw, headers)
    return headers


def tailor_configuration(target: Target, case: Case, draw: Draw) -> dict[str, str]:
    headers = {"Host": _host(draw)}
    _without_authorization(case)
    own = target.own
    if draw(st.sampled_from(["authorized", "mixed"])) == "authorized":
        # The client itself, with its current registration access token.
        case.path_parameters = {"client_id": own.client_id}
        headers["Authorization"] = f"Bearer {own.registration_access_token}"
    else:
        if draw(st.booleans()):
            case.path_parameters = {"client_id": own.client_id}
        token = draw(st.sampled_from(["other", "garbage", "none", "basic", "own"]))
        if token == "own":
            headers["Authorization"] = f"Bearer {own.registration_access_token}"
        elif token == "other":  # another client's valid token
            headers["Authorization"] = f"Bearer {target.other.registration_access_token}"
        elif token == "garbage":
            headers["Authorization"] = "Bearer " + draw(st.text("abcXYZ019-_.~+/", min_size=1))
        elif token == "basic":
            headers["Authorization"] = "Basic dXNlcjpwYXNz"
    if case.method == "PUT":
        client_id = (case.path_parameters or {}).get("client_id")
        body = draw(st.sampled_from(["valid", "generated_with_client_id", "generated"]))
        if body == "valid":
            case.body = {"client_id": client_id, **draw(st.sampled_from(REGISTER_EXAMPLES))}
        elif body == "generated_with_client_id" and isinstance(case.body, dict):
            case.body = {**case.body, "client_id": client_id}
            case.body.pop("client_secret", None)
        _json_body_variants(case, draw, headers)
    return headers


def after_configuration(target: Target, case: Case, response: Any) -> None:
    own = (case.path_parameters or {}).get("client_id") == target.own.client_id
    if own and case.method == "PUT" and response.status_code == 200:
        target.own.registration_access_token = response.json()["registration_access_token"]
    if own and case.method == "DELETE" and response.status_code == 204:
        target.own = target.register()


def tailor_management(target: Target, case: Case, draw: Draw) -> dict[str, str]:
    headers = {"Host": _host(draw)}
    _without_authorization(case)
    pool = list(target.managed)
    if case.method != "DELETE":
        pool.append(target.management_client_id)  # registered without client metadata
    has_client = "client_id" in (case.path_parameters or {})
    if draw(st.sampled_from(["authorized", "mixed"])) == "authorized":
        # The tenant owner, on a real client, with a body meant to be accepted.
        headers["Authorization"] = target.tokens["full"]
        if has_client:
            case.path_parameters = {"client_id": draw(st.sampled_from(pool))}
        if case.method == "PATCH":
            body = draw(st.sampled_from(["example", "metadata", "generated"]))
            if body == "example":
                case.body = copy.deepcopy(draw(st.sampled_from(PATCH_EXAMPLES)))
            elif body == "metadata":
                case.body = copy.deepcopy(draw(st.sampled_from(REGISTER_EXAMPLES)))
        return headers
    kind = draw(st.sampled_from(["none", *target.tokens]))
    if kind != "none":
        headers["Authorization"] = target.tokens[kind]
    if has_client and draw(st.booleans()):
        case.path_parameters = {"client_id": draw(st.sampled_from(pool))}
    if case.method == "PATCH" and draw(st.integers(0, 4)) == 4:
        base = case.body if isinstance(case.body, dict) else {}
        case.body = {**base, "client_name": PADDING}
    return headers


def after_management(target: Target, case: Case, response: Any) -> None:
    client_id = (case.path_parameters or {}).get("client_id")
    if case.method == "DELETE" and response.status_code == 204 and client_id in target.managed:
        target.managed.remove(client_id)
        target.managed.append(target.register().client_id)


def tailor_plain(target: Target, case: Case, draw: Draw) -> dict[str, str]:
    return {"Host": _host(draw)}


def _nothing(target: Target, case: Case, response: Any) -> None:
    return None


def _tailoring(label: str) -> tuple[Tailor, After]:
    if label == REGISTER:
        return tailor_register, _nothing
    if label.endswith(CONFIGURATION) and not label.startswith("OPTIONS"):
        return tailor_configuration, after_configuration
    if label.split(" ", 1)[1].startswith("/api/v2/"):
        return tailor_management, after_management
    return tailor_plain, _nothing


# ------------------------------------------------------------------------------ the property


def _cases(label: str) -> st.SearchStrategy[Case]:
    operation = OPERATIONS[label]
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


def fuzz(target: Target, label: str, max_examples: int = MAX_EXAMPLES) -> Counter[int]:
    """Run the property for one operation; the statuses seen, by count."""
    tailor, after = _tailoring(label)
    seen: Counter[int] = Counter()

    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(case=_cases(label), data=st.data())
    def conforms(case: Case, data: st.DataObject) -> None:
        headers = tailor(target, case, data.draw)
        response = call_and_check(target, case, headers)
        seen[response.status_code] += 1
        after(target, case, response)

    conforms()
    return seen


# What each operation must have answered at least once, so the success paths are checked too.
EXPECTED_SUCCESS = {
    REGISTER: 201,
    "OPTIONS /oidc/register": 204,
    f"GET {CONFIGURATION}": 200,
    f"PUT {CONFIGURATION}": 200,
    f"DELETE {CONFIGURATION}": 204,
    f"OPTIONS {CONFIGURATION}": 204,
    "GET /api/v2/clients": 200,
    f"GET {MANAGEMENT_ONE}": 200,
    f"PATCH {MANAGEMENT_ONE}": 200,
    f"DELETE {MANAGEMENT_ONE}": 204,
    "GET /healthz": 200,
    "GET /readyz": 200,
    "GET /metrics": 200,
    f"GET {OPENAPI_PATH}": 200,
}


def _routed(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def test_every_operation_is_fuzzed() -> None:
    assert set(OPERATIONS) == set(EXPECTED_SUCCESS)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
async def test_operation_conforms_to_the_document(target: Target, label: str) -> None:
    seen = await asyncio.to_thread(fuzz, target, label)
    assert seen[EXPECTED_SUCCESS[label]] > 0, f"{label}: no success answer among {dict(seen)}"


async def test_every_route_is_documented(target: Target) -> None:
    documented = {(op.method.upper(), op.path) for op in OPERATIONS.values()}
    routed = _routed(target.app)
    assert routed - documented == set()
    # CORS preflights are answered by middleware, not routes.
    missing = {(method, path) for method, path in documented - routed if method != "OPTIONS"}
    assert missing <= {("GET", OPENAPI_PATH)}


async def test_restricted_tenant_answers_conform(target: Target, shared_open_dcr: Dcr) -> None:
    """Refusals that need other tenant settings: registration and self-management off (403),
    then a rate limit of one registration per hour (429 with Retry-After)."""
    dcr = shared_open_dcr
    try:
        await dcr.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": False},
                "dynamic_client_registration": {"client_self_management": False},
            }
        )
        for label in (
            REGISTER,
            f"GET {CONFIGURATION}",
            f"PUT {CONFIGURATION}",
            f"DELETE {CONFIGURATION}",
        ):
            seen = await asyncio.to_thread(fuzz, target, label, 15)
            assert seen[403] > 0, f"{label}: {dict(seen)}"
        await dcr.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {
                    "client_self_management": True,
                    "rate_limit": {"requests": 1, "window_seconds": 3600},
                },
            }
        )
        seen = await asyncio.to_thread(fuzz, target, REGISTER, 15)
        assert seen[429] > 0, dict(seen)
    finally:
        await dcr.patch_settings(
            {
                "flags": {"enable_dynamic_client_registration": True},
                "dynamic_client_registration": {
                    "client_self_management": True,
                    "rate_limit": {"requests": 100_000, "window_seconds": 60},
                },
            }
        )


# Hostile requests the generators do not produce; each once answered a 500. They are checked
# exactly like generated ones.
DEEP_JSON = b"[" * 5000 + b"]" * 5000


HOSTILE_REQUESTS = [
    pytest.param(
        "GET /api/v2/clients",
        {"query": {"page": "\u00b2"}},
        {},
        id="list-superscript-digit",
    ),
    pytest.param(
        "GET /api/v2/clients",
        {"query": {"per_page": "1" * 5000}},
        {},
        id="list-5000-digits",
    ),
    pytest.param(
        f"PATCH {MANAGEMENT_ONE}",
        {"body": {"is_first_party": False}},
        {"headers": {"Content-Type": "application/json; charset=no-such-codec"}},
        id="patch-unknown-charset",
    ),
    pytest.param(
        f"PATCH {MANAGEMENT_ONE}",
        {"body": {}},
        {"data": DEEP_JSON},
        id="patch-deeply-nested-json",
    ),
    pytest.param(
        f"GET {CONFIGURATION}",
        {},
        {"headers": {"Authorization": "Bearer \u00ff\u00fe"}},
        id="configuration-non-utf8-token",
    ),
    pytest.param(
        "GET /api/v2/clients",
        {},
        {"headers": {"Authorization": "Bearer \u00ff\u00fe"}},
        id="management-non-utf8-token",
    ),
    pytest.param(
        REGISTER,
        {"body": {"redirect_uris": ["https://app.example/cb"]}},
        {"headers": {"Host": "acme\u00ff.example"}},
        id="non-utf8-host",
    ),
]


@pytest.mark.parametrize(("label", "parts", "sent"), HOSTILE_REQUESTS)
async def test_hostile_requests_conform(
    target: Target, label: str, parts: dict[str, Any], sent: dict[str, Any]
) -> None:
    """Non-Latin-1 header values are sent as their raw bytes (requests encodes Latin-1)."""
    operation = OPERATIONS[label]
    if "{client_id}" in operation.path:
        parts = {**parts, "path_parameters": {"client_id": target.own.client_id}}
    case = operation.Case(media_type="application/json" if "body" in parts else None, **parts)
    headers = {"Host": HOST}
    if label.split(" ", 1)[1].startswith("/api/v2/"):
        headers["Authorization"] = target.tokens["full"]
    headers.update(sent.get("headers", {}))
    extra = {"data": sent["data"]} if "data" in sent else {}

    await asyncio.to_thread(call_and_check, target, case, headers, **extra)


async def test_openapi_route_serves_the_packaged_document() -> None:
    app = web.Application()
    app.add_routes([openapi_route()])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get(OPENAPI_PATH)
        assert response.status == 200
        assert response.content_type == "application/yaml"
        served = await response.read()
    assert served == openapi_document()
    document = yaml.safe_load(served)
    assert document["openapi"].startswith("3.1.")
    assert document["paths"].keys() == SCHEMA.raw_schema["paths"].keys()
