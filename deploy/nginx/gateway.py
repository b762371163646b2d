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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The policy half of the definition, beside this script (it is run as a script and loaded by
# path, so its folder is put on the import path first).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_policy import (  # noqa: E402
    ACCEPTED_CONTENT_CODINGS,
    ACCESS_LOG_FIELDS,
    CLIENT_TIMEOUTS,
    ERROR_ALIASES,
    ERROR_BODIES,
    HSTS_MAX_AGE,
    MAX_BODY,
    NOT_FOUND,
    OWN_ANSWER_HEADERS,
    REQUEST_ID_PATTERN,
    RETRY,
    ROUTES,
    SERVICES,
    STATUS_HEADERS,
    TLS_CIPHERS,
    UPSTREAM_TIMEOUTS,
    Route,
)
from gateway_targets import (  # noqa: E402
    CLUSTER_DNS,
    SERVICE_DOMAIN,
    ResolvedUpstreams,
    StaticUpstreams,
    Target,
    Tls,
    committed_targets,
    compose_target,
    k8s_target,
    local_target,
)

# What the scripts that load this one (deploy/local/stack.py, deploy/check.py, the tests)
# use: the targets are defined in gateway_targets.py and re-exported here.
__all__ = [
    "CLUSTER_DNS",
    "SERVICE_DOMAIN",
    "StaticUpstreams",
    "Tls",
    "committed_targets",
    "compose_target",
    "k8s_target",
    "local_target",
    "render",
    "stale",
    "write",
]

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
    lines.append("            if ($gateway_refused_coding) { return 415; }")
    lines.append(f"            proxy_pass {_proxy_pass(target, route.service)};")
    for status in sorted(ERROR_BODIES[route.errors]):
        lines.append(f"            error_page {status} = {_error_location(route.errors, status)};")
    for alias, status in sorted(ERROR_ALIASES.items()):
        lines.append(f"            error_page {alias} = {_error_location(route.errors, status)};")
    lines.append("        }")
    return lines


def _own_answer_headers(target: Target, status: int | None = None) -> list[str]:
    """`add_header` lines of an answer the gateway writes itself. A location that adds a
    header inherits none from its server, so HSTS is repeated here where the target has TLS."""
    headers = dict(OWN_ANSWER_HEADERS)
    if status is not None:
        headers.update(STATUS_HEADERS.get(status, {}))
    lines = [f'            add_header {name} "{value}" always;' for name, value in headers.items()]
    if target.tls:
        lines.append(_hsts_line("            "))
    return lines


def _error_locations(target: Target) -> list[str]:
    lines = []
    for errors, bodies in ERROR_BODIES.items():
        for status, body in sorted(bodies.items()):
            text = json.dumps(body, separators=(",", ":"))
            lines += [
                f"        location {_error_location(errors, status)} {{",
                "            default_type application/json;",
                *_own_answer_headers(target, status),
                f"            return {status} {_quote(text)};",
                "        }",
            ]
    return lines


def _hsts_line(indent: str) -> str:
    return f'{indent}add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE}; includeSubDomains" always;'


def _refused_coding_map() -> list[str]:
    accepted = "|".join(ACCEPTED_CONTENT_CODINGS)
    return [
        "    # A request body in a content coding no endpoint takes (any but identity): 415.",
        "    map $http_content_encoding $gateway_refused_coding {",
        '        "" 0;',
        f'        "~*^\\s*({accepted})\\s*$" 0;',
        "        default 1;",
        "    }",
    ]


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
        # Every answer, errors included (`always`); the proxied locations add no headers of
        # their own, so they inherit it; the gateway's own answers repeat it.
        _hsts_line("        "),
    ]


def _http_preamble(target: Target) -> list[str]:
    """The top of the configuration: process, limits, timeouts, request id, access log,
    upstreams."""
    log_fields = ",".join(
        f'"{name}":{value}' if number else f'"{name}":"{value}"'
        for name, value, number in ACCESS_LOG_FIELDS
    )
    buffer = f" buffer={target.access_log_buffer} flush=1s" if target.access_log_buffer else ""
    return [
        f"# The public gateway, rendered for '{target.name}' by deploy/nginx/gateway.py.",
        "# Generated: edit deploy/nginx/gateway_policy.py (or gateway_targets.py), then "
        "`python deploy/nginx/gateway.py write`.",
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
        *_refused_coding_map(),
        f"    log_format gateway_json escape=json '{{{log_fields}}}';",
        f"    access_log /dev/stdout gateway_json{buffer};",
        "",
        *_upstream_blocks(target),
        "",
    ]


def _side_servers(target: Target) -> list[str]:
    """The gateway's own liveness listener and the plain-HTTP redirect, where the target has
    them."""
    out: list[str] = []
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
    return out


def _api_server_head(target: Target) -> list[str]:
    """The public server's listener, TLS and the headers and timeouts of every proxied
    request."""
    out: list[str] = []
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
    return out


def render(target: Target) -> str:
    """The nginx configuration of `target` (run with `-p <writable prefix>`: the pid file and
    temporary folders are relative to it)."""
    out = [*_http_preamble(target), *_side_servers(target), *_api_server_head(target)]
    for route in ROUTES:
        out += _location(target, route)
    out += [
        "",
        # Answers nginx gives before a location is chosen are in the OAuth format too.
        *(
            f"        error_page {status} = {_error_location('oauth', status)};"
            for status in sorted(ERROR_BODIES["oauth"])
        ),
        *(
            f"        error_page {alias} = {_error_location('oauth', status)};"
            for alias, status in sorted(ERROR_ALIASES.items())
        ),
        *_error_locations(target),
        "",
        "        location / {",
        "            default_type application/json;",
        *_own_answer_headers(target),
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
