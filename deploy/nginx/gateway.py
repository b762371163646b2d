#!/usr/bin/env python3
"""The public gateway, defined once and rendered to nginx configuration for every way the
stack runs.

What is defined here and nowhere else: the public routes of DESIGN.md (health, readiness and
metrics stay on the services' own ports), the forwarding headers, the body limit with JSON
413s in each endpoint's error format, JSON 502/504s when a service cannot be reached, the
timeouts, the JSON access log and the retry policy (connection errors and timeouts only,
never a non-idempotent request that reached a service).

Renderings (`TARGETS`), each from the same routes:

  local        deploy/local/stack.py renders it at start (make run, the e2e tests): static
               upstreams on 127.0.0.1 with keep-alive, one worker.
  compose      deploy/nginx/rendered/compose.conf: service names re-resolved through Docker's
               DNS every few seconds, so `--scale registration=3` replicas that come and go
               are all used.
  compose-tls  deploy/nginx/rendered/compose-tls.conf: the production variant (TLS, HSTS) for
               local tries (`docker compose --profile tls up`, deploy/nginx/self_signed_cert.py).
  k8s          deploy/k8s/base/gateway/nginx.conf: the Services through the cluster DNS; the
               DNS server and the namespace's Service domain are read from the pod's
               /etc/resolv.conf by deploy/k8s/base/gateway/start.sh (placeholders below).
  k8s-tls      deploy/k8s/overlays/production/gateway/nginx.conf: TLS from the mounted Secret,
               HSTS, plain HTTP redirected.

    python deploy/nginx/gateway.py write   # rewrite the committed renderings
    python deploy/nginx/gateway.py check   # exit 1 if one of them is stale
    python deploy/nginx/gateway.py show compose
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# --- What the gateway does ------------------------------------------------------------------

SERVICES = ("registration", "authorize", "tenant-settings")
# The services' own body limit (oidc_common.service.DEFAULT_MAX_BODY), enforced at the edge
# from the headers already. Every accepted body also fits the in-memory buffer, so nginx never
# writes one to a temporary file (which unprivileged workers may be unable to write).
MAX_BODY = "64k"
# The services' request-id rule (oidc_common.logs): a caller's id is kept only if the service
# would keep it too, so both log the same id.
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"


@dataclass(frozen=True)
class Route:
    """One public path: `match` is nginx's `=` (exact) or `^~` (prefix, beats regexes)."""

    match: str
    path: str
    service: str
    errors: str  # the endpoint's error format: "oauth" (RFC 6749/7591) or "management" (Auth0)


ROUTES: tuple[Route, ...] = (
    # registration: RFC 7591 and RFC 7592, and the tenant owner's view of clients
    Route("=", "/oidc/register", "registration", "oauth"),
    Route("^~", "/oidc/register/", "registration", "oauth"),
    Route("=", "/api/v2/clients", "registration", "management"),
    Route("^~", "/api/v2/clients/", "registration", "management"),
    # tenant-settings
    Route("=", "/api/v2/tenants/settings", "tenant-settings", "management"),
    # authorize: sign-in, tokens, discovery, users and APIs
    Route("=", "/api/v2/users", "authorize", "management"),
    Route("^~", "/api/v2/users/", "authorize", "management"),
    Route("=", "/api/v2/resource-servers", "authorize", "management"),
    Route("^~", "/api/v2/resource-servers/", "authorize", "management"),
    Route("=", "/authorize", "authorize", "oauth"),
    Route("^~", "/u/", "authorize", "oauth"),
    Route("=", "/oauth/token", "authorize", "oauth"),
    Route("=", "/userinfo", "authorize", "oauth"),
    Route("^~", "/.well-known/", "authorize", "oauth"),
)

# Answers nginx itself gives, in each endpoint's own format (DESIGN.md "Error bodies").
# 502: no replica could be reached; 504: one was reached but did not answer in time.
ERROR_BODIES: Mapping[str, Mapping[int, dict[str, object]]] = {
    "oauth": {
        413: {"error": "invalid_request", "error_description": "Request body too large"},
        502: {
            "error": "temporarily_unavailable",
            "error_description": "The service is unreachable, retry later",
        },
        504: {
            "error": "temporarily_unavailable",
            "error_description": "The service did not answer in time, retry later",
        },
    },
    "management": {
        413: {
            "statusCode": 413,
            "error": "Request Entity Too Large",
            "message": "Request body too large",
            "errorCode": "request_entity_too_large",
        },
        502: {
            "statusCode": 502,
            "error": "Bad Gateway",
            "message": "The service is unreachable, retry later",
            "errorCode": "service_unreachable",
        },
        504: {
            "statusCode": 504,
            "error": "Gateway Timeout",
            "message": "The service did not answer in time, retry later",
            "errorCode": "service_timeout",
        },
    },
}
NOT_FOUND = {"error": "not_found", "error_description": "No such endpoint"}

# Client side: slow clients are cut off instead of holding a connection.
CLIENT_TIMEOUTS = {
    "client_header_timeout": "10s",
    "client_body_timeout": "10s",
    "send_timeout": "10s",
    "keepalive_timeout": "65s",
}
# Service side: connecting is local and fast (a refused or silent replica is skipped quickly);
# the longest legitimate answer is a sign-in fetching a Client ID Metadata Document (5 s) or
# hashing a password, well under the read timeout.
UPSTREAM_TIMEOUTS = {
    "proxy_connect_timeout": "2s",
    "proxy_send_timeout": "10s",
    "proxy_read_timeout": "30s",
}
# Retry on another replica only when the request could not have been processed twice: nginx
# never passes a POST or PATCH on once it was sent (no `non_idempotent` here), so a retried
# registration is one whose connection was refused or never accepted. Bounded in count and time.
RETRY = {
    "proxy_next_upstream": "error timeout",
    "proxy_next_upstream_tries": "3",
    "proxy_next_upstream_timeout": "10s",
}

# One JSON object per request. Paths only, never query strings (they carry state, nonces,
# login hints) nor any header that may hold a credential.
ACCESS_LOG_FIELDS = (
    # (name, variable, is a number: written without quotes)
    ("time", "$time_iso8601", False),
    ("request_id", "$gateway_request_id", False),
    ("remote_addr", "$remote_addr", False),
    ("host", "$host", False),
    ("method", "$request_method", False),
    ("path", "$uri", False),
    ("status", "$status", True),
    ("bytes_sent", "$bytes_sent", True),
    ("request_length", "$request_length", True),
    ("request_time", "$request_time", True),
    # Strings: "-" without an upstream, "a, b" after a retry.
    ("upstream_addr", "$upstream_addr", False),
    ("upstream_status", "$upstream_status", False),
    ("upstream_response_time", "$upstream_response_time", False),
    ("user_agent", "$http_user_agent", False),
)

# Mozilla's "intermediate" TLS profile (TLS 1.2 and 1.3, forward-secret AEAD ciphers only).
TLS_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
HSTS_MAX_AGE = 63072000  # two years, as the HSTS preload list asks

# --- Where it runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaticUpstreams:
    """Fixed addresses, resolved once at start, with keep-alive connections to them."""

    servers: Mapping[str, tuple[str, ...]]
    keepalive: Mapping[str, int] = field(
        default_factory=lambda: {"registration": 64, "authorize": 32, "tenant-settings": 16}
    )


@dataclass(frozen=True)
class ResolvedUpstreams:
    """Names looked up at request time through `resolver`, cached `valid` seconds: every
    address the name has then (every replica) takes requests, and a retry goes to the next."""

    resolver: str
    hosts: Mapping[str, str]  # service -> "name:port"
    valid: str = "5s"


@dataclass(frozen=True)
class Tls:
    certificate: str
    certificate_key: str
    # Plain HTTP on `redirect_listen` answers only with a redirect to https (no API over it).
    redirect_listen: str | None = None


@dataclass(frozen=True)
class Target:
    name: str
    listen: str
    upstreams: StaticUpstreams | ResolvedUpstreams
    worker_processes: str = "auto"
    # The gateway's own liveness (`GET /healthz`), never on the public listener.
    health_listen: str | None = None
    tls: Tls | None = None
    access_log_buffer: str | None = None
    # Where the rendering is committed (relative to the repository), if it is.
    path: str | None = None


# Where compose and Kubernetes mount the certificate (a Secret / the tls profile's volume).
CONTAINER_TLS = Tls("/etc/nginx/tls/tls.crt", "/etc/nginx/tls/tls.key")


def compose_target(tls: bool = False) -> Target:
    upstreams = ResolvedUpstreams(
        # Docker's embedded DNS: answers every running replica of a scaled service.
        resolver="127.0.0.11",
        hosts={service: f"{service}:8000" for service in SERVICES},
        valid="5s",
    )
    suffix = "-tls" if tls else ""
    return Target(
        name=f"compose{suffix}",
        listen="8443 ssl" if tls else "8080",
        upstreams=upstreams,
        health_listen="8081",
        tls=CONTAINER_TLS if tls else None,
        path=f"deploy/nginx/rendered/compose{suffix}.conf",
    )


# Filled in by deploy/k8s/base/gateway/start.sh from the pod's /etc/resolv.conf: nginx's
# resolver needs an address and ignores search domains, and both differ between clusters
# and namespaces.
CLUSTER_DNS = "@CLUSTER_DNS@"
SERVICE_DOMAIN = "@SERVICE_DOMAIN@"


def k8s_target(tls: bool = False) -> Target:
    upstreams = ResolvedUpstreams(
        resolver=CLUSTER_DNS,
        # ClusterIP Services (port 80): stable addresses, kube-proxy spreads over ready pods.
        hosts={service: f"{service}.{SERVICE_DOMAIN}:80" for service in SERVICES},
        valid="10s",
    )
    return Target(
        name="k8s-tls" if tls else "k8s",
        listen="8443 ssl" if tls else "8080",
        upstreams=upstreams,
        # Pods are sized to ~2 CPUs; "auto" would count the node's cores instead.
        worker_processes="2",
        health_listen="8081",
        # The production overlay also answers plain HTTP, with a redirect only.
        tls=replace(CONTAINER_TLS, redirect_listen="8080") if tls else None,
        path=(
            "deploy/k8s/overlays/production/gateway/nginx.conf"
            if tls
            else "deploy/k8s/base/gateway/nginx.conf"
        ),
    )


def local_target(
    port: int,
    servers: Mapping[str, Iterable[int]],
    *,
    tls: Tls | None = None,
) -> Target:
    """The gateway `make run` and the e2e tests start: `servers` maps each service to the
    127.0.0.1 ports of its replicas."""
    return Target(
        name="local" if tls is None else "local-tls",
        listen=f"127.0.0.1:{port}" + (" ssl" if tls else ""),
        upstreams=StaticUpstreams(
            {s: tuple(f"127.0.0.1:{p}" for p in ports) for s, ports in servers.items()}
        ),
        # One worker: the benchmarks pin the gateway to one CPU.
        worker_processes="1",
        tls=tls,
        access_log_buffer="32k",
    )


def committed_targets() -> tuple[Target, ...]:
    return (compose_target(), compose_target(tls=True), k8s_target(), k8s_target(tls=True))


# --- Rendering -------------------------------------------------------------------------------


def _upstream_name(service: str) -> str:
    return service.replace("-", "_")


def _quote(text: str) -> str:
    """An nginx string literal (single quotes; the JSON bodies hold none)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"cannot quote {text!r}")
    return f"'{text}'"


def _error_location(errors: str, status: int) -> str:
    return f"@{errors}_{status}"


def _proxy_pass(target: Target, service: str) -> str:
    if isinstance(target.upstreams, StaticUpstreams):
        return f"http://{_upstream_name(service)}"
    return f"http://$backend_{_upstream_name(service)}"


def _upstream_blocks(target: Target) -> list[str]:
    upstreams = target.upstreams
    if isinstance(upstreams, ResolvedUpstreams):
        return [
            f"    resolver {upstreams.resolver} valid={upstreams.valid} ipv6=off;",
            "    resolver_timeout 2s;",
        ]
    lines = []
    for service in SERVICES:
        servers = " ".join(
            # A refused replica is skipped for 2 s, then tried again (it may have restarted).
            f"server {address} max_fails=1 fail_timeout=2s;"
            for address in upstreams.servers[service]
        )
        keepalive = upstreams.keepalive[service]
        lines.append(
            f"    upstream {_upstream_name(service)} {{ {servers} keepalive {keepalive}; }}"
        )
    return lines


def _location(target: Target, route: Route) -> list[str]:
    lines = [f"        location {route.match} {route.path} {{"]
    lines.append(f"            proxy_pass {_proxy_pass(target, route.service)};")
    for status in sorted(ERROR_BODIES[route.errors]):
        lines.append(f"            error_page {status} = {_error_location(route.errors, status)};")
    lines.append("        }")
    return lines


def _error_locations() -> list[str]:
    lines = []
    for errors, bodies in ERROR_BODIES.items():
        for status, body in sorted(bodies.items()):
            text = json.dumps(body, separators=(",", ":"))
            lines += [
                f"        location {_error_location(errors, status)} {{",
                "            default_type application/json;",
                f"            return {status} {_quote(text)};",
                "        }",
            ]
    return lines


def _tls_lines(tls: Tls) -> list[str]:
    return [
        f"        ssl_certificate {tls.certificate};",
        f"        ssl_certificate_key {tls.certificate_key};",
        "        ssl_protocols TLSv1.2 TLSv1.3;",
        f"        ssl_ciphers {TLS_CIPHERS};",
        "        ssl_prefer_server_ciphers off;",
        "        ssl_session_cache shared:TLS:10m;",
        "        ssl_session_timeout 1d;",
        "        ssl_session_tickets off;",
        # Every answer, errors included (`always`); no location adds headers of its own, so
        # all of them inherit it.
        "        add_header Strict-Transport-Security "
        f'"max-age={HSTS_MAX_AGE}; includeSubDomains" always;',
    ]


def render(target: Target) -> str:
    """The nginx configuration of `target` (run with `-p <writable prefix>`: the pid file and
    temporary folders are relative to it)."""
    log_fields = ",".join(
        f'"{name}":{value}' if number else f'"{name}":"{value}"'
        for name, value, number in ACCESS_LOG_FIELDS
    )
    buffer = f" buffer={target.access_log_buffer} flush=1s" if target.access_log_buffer else ""
    out = [
        f"# The public gateway, rendered for '{target.name}' by deploy/nginx/gateway.py.",
        "# Generated: edit deploy/nginx/gateway.py, then `python deploy/nginx/gateway.py write`.",
        f"worker_processes {target.worker_processes};",
        "pid nginx.pid;",
        "error_log stderr warn;",
        "events { worker_connections 4096; }",
        "",
        "http {",
        "    server_tokens off;",
        "    default_type application/octet-stream;",
        "    client_body_temp_path client_body_temp;",
        "    proxy_temp_path proxy_temp;",
        "    fastcgi_temp_path fastcgi_temp;",
        "    uwsgi_temp_path uwsgi_temp;",
        "    scgi_temp_path scgi_temp;",
        f"    client_max_body_size {MAX_BODY};",
        f"    client_body_buffer_size {MAX_BODY};",
        *(f"    {name} {value};" for name, value in CLIENT_TIMEOUTS.items()),
        "",
        "    # Keep a caller's request id when the services would keep it too, else mint one, so",
        "    # the logs of every hop share it.",
        "    map $http_x_request_id $gateway_request_id {",
        f'        "~{REQUEST_ID_PATTERN}" $http_x_request_id;',
        "        default $request_id;",
        "    }",
        f"    log_format gateway_json escape=json '{{{log_fields}}}';",
        f"    access_log /dev/stdout gateway_json{buffer};",
        "",
        *_upstream_blocks(target),
        "",
    ]
    if target.health_listen:
        out += [
            "    # The gateway's own liveness, for probes only: not on the public listener.",
            "    server {",
            f"        listen {target.health_listen};",
            "        access_log off;",
            "        location = /healthz {",
            "            default_type application/json;",
            """            return 200 '{"status":"ok"}';""",
            "        }",
            "        location / { return 404; }",
            "    }",
            "",
        ]
    if target.tls and target.tls.redirect_listen:
        out += [
            "    # Plain HTTP only redirects: no API answers without TLS.",
            "    server {",
            f"        listen {target.tls.redirect_listen};",
            "        server_name _;",
            "        location / { return 308 https://$host$request_uri; }",
            "    }",
            "",
        ]
    out += [
        "    server {",
        f"        listen {target.listen};",
        "        server_name _;",
    ]
    if target.tls:
        out += _tls_lines(target.tls)
    if isinstance(target.upstreams, ResolvedUpstreams):
        out += [
            "        # Looked up per request (through `resolver`), so replicas may come and go.",
            *(
                f"        set $backend_{_upstream_name(s)} {target.upstreams.hosts[s]};"
                for s in SERVICES
            ),
        ]
    out += [
        "",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        "        # The gateway is the edge: it overwrites forwarding headers a client may have sent.",
        "        proxy_set_header X-Forwarded-Host $http_host;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-Port $server_port;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Request-ID $gateway_request_id;",
        *(f"        {name} {value};" for name, value in UPSTREAM_TIMEOUTS.items()),
        *(f"        {name} {value};" for name, value in RETRY.items()),
        "",
    ]
    for route in ROUTES:
        out += _location(target, route)
    out += [
        "",
        # Answers nginx gives before a location is chosen are in the OAuth format too.
        *(
            f"        error_page {status} = {_error_location('oauth', status)};"
            for status in sorted(ERROR_BODIES["oauth"])
        ),
        *_error_locations(),
        "",
        "        location / {",
        "            default_type application/json;",
        f"            return 404 {_quote(json.dumps(NOT_FOUND, separators=(',', ':')))};",
        "        }",
        "    }",
        "}",
        "",
    ]
    return "\n".join(out)


# --- The committed renderings -----------------------------------------------------------------


def stale(root: Path = ROOT) -> list[str]:
    """Committed renderings that differ from what the definition renders now."""
    found = []
    for target in committed_targets():
        assert target.path is not None
        path = root / target.path
        if not path.exists() or path.read_text() != render(target):
            found.append(target.path)
    return found


def write(root: Path = ROOT) -> list[str]:
    written = []
    for target in committed_targets():
        assert target.path is not None
        path = root / target.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render(target)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(target.path)
    return written


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "write":
        for path in write():
            print(f"wrote {path}")
        return 0
    if command == "check":
        if found := stale():
            print(
                "stale gateway renderings (run `python deploy/nginx/gateway.py write`): "
                + ", ".join(found),
                file=sys.stderr,
            )
            return 1
        return 0
    if command == "show" and len(argv) == 2:
        targets = {t.name: t for t in committed_targets()}
        if argv[1] in targets:
            print(render(targets[argv[1]]), end="")
            return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
