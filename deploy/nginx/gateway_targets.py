"""Where the public gateway runs: the local stack, compose and Kubernetes, each a `Target`
(listeners, upstreams, TLS, where its rendering is committed). `gateway.py` renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from gateway_policy import SERVICES


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
