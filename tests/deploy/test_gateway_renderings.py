"""The gateway exists once (deploy/nginx/gateway.py) and is rendered for the local stack,
compose and Kubernetes: these tests read every rendering as nginx would and fail if a route,
a forwarding header, a limit or the retry policy exists in one and not in another."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.nginx_conf import Config, Directive, parse, public_server, routes

# DESIGN.md "Services and what each owns": the public paths, and who serves them. Written
# out here, not read from gateway.py, so a route dropped from the definition fails too.
PUBLIC_ROUTES = {
    ("=", "/oidc/register"): "registration",
    ("^~", "/oidc/register/"): "registration",
    ("=", "/api/v2/clients"): "registration",
    ("^~", "/api/v2/clients/"): "registration",
    ("=", "/api/v2/tenants/settings"): "tenant-settings",
    ("=", "/api/v2/users"): "authorize",
    ("^~", "/api/v2/users/"): "authorize",
    ("=", "/api/v2/resource-servers"): "authorize",
    ("^~", "/api/v2/resource-servers/"): "authorize",
    ("=", "/api/v2/grants"): "authorize",
    ("^~", "/api/v2/grants/"): "authorize",
    ("=", "/authorize"): "authorize",
    ("=", "/oidc/logout"): "authorize",
    ("=", "/v2/logout"): "authorize",
    ("^~", "/u/"): "authorize",
    ("=", "/oauth/token"): "authorize",
    ("=", "/oauth/revoke"): "authorize",
    ("=", "/oauth/introspect"): "authorize",
    ("=", "/userinfo"): "authorize",
    ("^~", "/.well-known/"): "authorize",
}
COMMITTED = {
    "compose": "deploy/nginx/rendered/compose.conf",
    "compose-tls": "deploy/nginx/rendered/compose-tls.conf",
    "k8s": "deploy/k8s/base/gateway/nginx.conf",
    "k8s-tls": "deploy/k8s/overlays/production/gateway/nginx.conf",
}
TLS_RENDERINGS = {"compose-tls", "k8s-tls"}


@pytest.fixture(scope="module")
def renderings(gateway: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Config]:
    """Every rendering: the local stack's as deploy/local/stack.py writes it (two registration
    replicas), and the committed files compose and Kubernetes use."""
    from tests.support.stack import load_stack_module

    stack_module = load_stack_module()
    state = tmp_path_factory.mktemp("gateway-state")
    config = stack_module.StackConfig(
        state=state,
        gateway_port=18080,
        ports={"registration": 18001, "authorize": 18002, "tenant-settings": 18003},
        registration_replicas=2,
    )
    local = stack_module.Stack(config).render_gateway().read_text()
    texts = {"local": local} | {name: (ROOT / path).read_text() for name, path in COMMITTED.items()}
    return {name: parse(text) for name, text in texts.items()}


def test_the_committed_renderings_are_current(gateway: ModuleType) -> None:
    assert gateway.stale() == [], "run: python deploy/nginx/gateway.py write"
    assert {t.name: t.path for t in gateway.committed_targets()} == COMMITTED


def test_every_rendering_routes_exactly_the_public_paths(renderings: dict[str, Config]) -> None:
    for name, config in renderings.items():
        assert routes(config) == PUBLIC_ROUTES, name


def test_no_route_exists_in_one_rendering_and_not_in_another(
    renderings: dict[str, Config],
) -> None:
    reference = routes(renderings["local"])
    for name, config in renderings.items():
        found = routes(config)
        assert found.keys() - reference.keys() == set(), f"only in {name}"
        assert reference.keys() - found.keys() == set(), f"missing from {name}"
        assert found == reference, name


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.yaml"])
def test_internal_endpoints_are_not_public(renderings: dict[str, Config], path: str) -> None:
    for name, config in renderings.items():
        matching = [
            (match, prefix)
            for match, prefix in routes(config)
            if (match == "=" and prefix == path) or (match == "^~" and path.startswith(prefix))
        ]
        assert matching == [], name


def _server_values(server: Directive, name: str) -> list[list[str]]:
    return server.values(name)


def test_forwarding_headers_timeouts_and_retries_are_the_same_everywhere(
    renderings: dict[str, Config],
) -> None:
    shapes = {}
    for name, config in renderings.items():
        server = public_server(config)
        headers = {args[0]: args[1] for args in server.values("proxy_set_header")}
        assert headers["X-Forwarded-For"] == "$remote_addr", name
        assert headers["X-Forwarded-Proto"] == "$scheme", name
        assert headers["X-Forwarded-Host"] == "$http_host", name
        assert headers["X-Request-ID"] == "$gateway_request_id", name
        [retry] = server.values("proxy_next_upstream")
        # Idempotent failures only: never a POST or PATCH that reached a service.
        assert "non_idempotent" not in retry and set(retry) <= {"error", "timeout"}, name
        shapes[name] = (
            headers,
            server.values("proxy_connect_timeout"),
            server.values("proxy_read_timeout"),
            server.values("proxy_next_upstream_tries"),
            config.http.values("client_max_body_size"),
            config.http.values("client_body_buffer_size"),
            config.http.values("log_format"),
        )
    assert len({json.dumps(shape) for shape in shapes.values()}) == 1, shapes.keys()


def test_request_ids_follow_the_services_rule(renderings: dict[str, Config]) -> None:
    from oidc_common import logs

    for name, config in renderings.items():
        [request_id_map] = [m for m in config.http.all("map") if m.args[1] == "$gateway_request_id"]
        [keep] = [d for d in request_id_map.block or [] if d.name.startswith('"~')]
        pattern = keep.name.strip('"').removeprefix("~")
        assert pattern == logs._VALID_REQUEST_ID.pattern.replace("\\-", "-"), name


def test_the_access_log_is_json_without_query_strings(renderings: dict[str, Config]) -> None:
    for name, config in renderings.items():
        [[format_name, escape, fields]] = config.http.values("log_format")
        assert (format_name, escape) == ("gateway_json", "escape=json"), name
        # Every variable replaced by a number: the format must be one JSON object.
        parsed = json.loads(re.sub(r"\$[a-z_0-9]+", "0", fields))
        assert {"request_id", "method", "path", "status", "upstream_status"} <= parsed.keys()
        assert "$request_uri" not in fields and "$args" not in fields and "$request " not in fields
        assert "authorization" not in fields.lower() and "cookie" not in fields.lower()
        [access_log] = config.http.values("access_log")
        assert access_log[:2] == ["/dev/stdout", "gateway_json"], name


def test_each_endpoint_answers_gateway_errors_in_its_own_format(
    renderings: dict[str, Config],
) -> None:
    for name, config in renderings.items():
        server = public_server(config)
        named = {
            loc.args[0]: loc.values("return")[0]
            for loc in server.all("location")
            if loc.args[0].startswith("@")
        }
        for location in server.all("location"):
            if location.args[0].startswith("@") or location.args == ["/"]:
                continue
            path = location.args[1]
            management = path.startswith("/api/v2/")
            pages = {args[0]: args[-1] for args in location.values("error_page")}
            assert set(pages) == {
                "405",
                "413",
                "415",
                "501",
                "502",
                "504",
                "505",
            }, (name, path)
            for status, target in pages.items():
                code, body_text = named[target]
                body = json.loads(body_text)
                assert code == status
                if management:  # Auth0's shape
                    assert body["statusCode"] == int(code) and "message" in body, (name, path)
                else:  # RFC 6749 / 7591
                    assert set(body) == {"error", "error_description"}, (name, path)


def test_tls_renderings_terminate_tls_and_set_hsts(renderings: dict[str, Config]) -> None:
    for name, config in renderings.items():
        server = public_server(config)
        hsts = [a for a in server.values("add_header") if a[0] == "Strict-Transport-Security"]
        if name in TLS_RENDERINGS:
            assert server.values("listen") == [["8443", "ssl"]], name
            assert server.values("ssl_certificate") == [["/etc/nginx/tls/tls.crt"]]
            assert server.values("ssl_certificate_key") == [["/etc/nginx/tls/tls.key"]]
            assert server.values("ssl_protocols") == [["TLSv1.2", "TLSv1.3"]]
            [[_, value, always]] = hsts
            assert value.startswith("max-age=63072000") and always == "always", name
            # A location that adds headers of its own inherits none (nginx), so each repeats
            # HSTS: the gateway's own answers add Cache-Control, the proxied ones add nothing.
            for loc in server.all("location"):
                added = [a[0] for a in loc.values("add_header")]
                assert not added or "Strict-Transport-Security" in added, (name, loc.args)
        else:
            assert hsts == [] and server.values("ssl_certificate") == [], name


def test_compose_re_resolves_replicas_and_kubernetes_uses_cluster_dns(
    renderings: dict[str, Config],
) -> None:
    for name in ("compose", "compose-tls"):
        [[resolver, valid, _]] = renderings[name].http.values("resolver")
        assert (resolver, valid) == ("127.0.0.11", "valid=5s")
        sets = dict(tuple(a) for a in public_server(renderings[name]).values("set"))
        assert sets["$backend_registration"] == "registration:8000"
    for name in ("k8s", "k8s-tls"):
        [[resolver, *_]] = renderings[name].http.values("resolver")
        assert resolver == "@CLUSTER_DNS@"  # filled in by gateway/start.sh
        sets = dict(tuple(a) for a in public_server(renderings[name]).values("set"))
        assert sets["$backend_registration"] == "registration.@SERVICE_DOMAIN@:80"
    # The local stack: one static upstream server per registration replica, with keep-alive.
    upstreams = {u.args[0]: u for u in renderings["local"].http.all("upstream")}
    servers = [args[0] for args in upstreams["registration"].values("server")]
    assert servers == ["127.0.0.1:18001", "127.0.0.1:18011"]
    assert upstreams["registration"].values("keepalive") == [["64"]]


def test_the_health_listener_is_not_the_public_one(renderings: dict[str, Config]) -> None:
    for name in COMMITTED:
        servers = renderings[name].http.all("server")
        [health] = [s for s in servers if s.values("listen") == [["8081"]]]
        assert [loc.args for loc in health.all("location")] == [["=", "/healthz"], ["/"]]
        assert public_server(renderings[name]).values("listen") != [["8081"]]


def test_the_production_variant_redirects_plain_http(renderings: dict[str, Config]) -> None:
    servers = renderings["k8s-tls"].http.all("server")
    [redirect] = [s for s in servers if s.values("listen") == [["8080"]]]
    [location] = redirect.all("location")
    assert location.values("return") == [["308", "https://$host$request_uri"]]


def _start_script(tmp_path: Path, resolv: str, template: Path) -> tuple[int, str, str]:
    import os
    import subprocess

    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(resolv)
    out = tmp_path / "nginx.conf"
    result = subprocess.run(
        ["sh", str(ROOT / "deploy/k8s/base/gateway/start.sh")],
        env={
            **os.environ,
            "RESOLV_CONF": str(resolv_conf),
            "GATEWAY_TEMPLATE": str(template),
            "GATEWAY_CONF": str(out),
            "GATEWAY_RENDER_ONLY": "1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, out.read_text() if out.exists() else "", result.stderr


def test_the_kubernetes_start_script_fills_in_dns_from_resolv_conf(tmp_path: Path) -> None:
    template = ROOT / COMMITTED["k8s"]
    code, text, _ = _start_script(
        tmp_path,
        "search team-a.svc.example.internal svc.example.internal example.internal\n"
        "nameserver 10.100.0.10\noptions ndots:5\n",
        template,
    )
    assert code == 0
    config = parse(text)
    assert config.http.values("resolver")[0][0] == "10.100.0.10"
    sets = dict(tuple(a) for a in public_server(config).values("set"))
    assert sets["$backend_registration"] == "registration.team-a.svc.example.internal:80"
    # An IPv6 cluster DNS address goes in brackets, as nginx's resolver wants it.
    code, text, _ = _start_script(
        tmp_path, "nameserver fd00::a\nsearch ns.svc.cluster.local\n", template
    )
    assert code == 0 and parse(text).http.values("resolver")[0][0] == "[fd00::a]"
    # No search domain (not a pod's resolv.conf): refuse rather than guess.
    code, _, stderr = _start_script(tmp_path, "nameserver 10.0.0.10\n", template)
    assert code == 1 and "search domain" in stderr
