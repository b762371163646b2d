"""Tenant resolution: the external origin of a request selects the tenant.

`X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Forwarded-For` are honoured only when the
peer is a configured trusted proxy (the gateway); from anyone else they are ignored, so a
client cannot pick another tenant or forge its IP address.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from pymongo.asynchronous.database import AsyncDatabase

from .config import IPNetwork
from .errors import error_for_path
from .lru import Lru
from .mongo import Collections, Document

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Infrastructure endpoints answer whatever the Host (probes use the pod IP).
INFRASTRUCTURE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Tenant:
    id: str
    domain: str
    friendly_name: str


@dataclass(frozen=True)
class Origin:
    """Where the request came in from, as the client sees it."""

    scheme: str
    host: str  # host[:port], as in the Host header
    client_ip: str

    @property
    def hostname(self) -> str:
        return split_host(self.host)[0]

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/"

    @property
    def management_audience(self) -> str:
        return f"{self.issuer}api/v2/"


_HOST_CHARS = re.compile(r"^[a-z0-9.\-\[\]:_]*$")
MAX_HOST_LENGTH = 253 + 1 + 5  # a DNS name, ":" and a port
# A port as RFC 3986 readers agree on it: 1..65535, no leading zero.
_PORT = re.compile(
    r"[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
)


def split_host(host: str) -> tuple[str, str | None]:
    """`example.com:8080` -> (`example.com`, `8080`); IPv6 literals keep their brackets off.

    A Host that is not made of host-name characters (RFC 3986 reg-name/IP literal, ASCII)
    yields an empty name, which no tenant has.
    """
    host = host.strip().lower()
    if len(host) > MAX_HOST_LENGTH or not _HOST_CHARS.match(host):
        return "", None
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return host, None
        rest = host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
        return (host[1:end], port) if port is None or _PORT.fullmatch(port) else ("", None)
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        # A port the issuer could not be built from (`018080`, `99999`, `0`) names no tenant.
        return (name, port) if _PORT.fullmatch(port) else ("", None)
    return host, None


# The longest textual IP address (an IPv6 address with an embedded IPv4 one).
MAX_ADDRESS_LENGTH = 45


def _is_trusted(remote: str | None, trusted: tuple[IPNetwork, ...]) -> bool:
    if not remote or not trusted or len(remote) > MAX_ADDRESS_LENGTH:
        return False
    return _is_trusted_address(remote, trusted)


# Cached per (address, trusted networks): asked for the peer of every request. Bounded in
# entries and, by the length check above, in size (a forwarded-for hop is whatever the
# client wrote).
@functools.lru_cache(maxsize=8192)
def _is_trusted_address(remote: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1].strip()


def _client_ip(remote: str, forwarded_for: str, trusted: tuple[IPNetwork, ...]) -> str:
    # Walk X-Forwarded-For right to left, skipping our own proxies: the first untrusted hop
    # is the client. Anything to its left was written by the client and cannot be believed.
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return hops[0] if hops else remote


def request_origin(request: web.Request, trusted: tuple[IPNetwork, ...]) -> Origin:
    remote = request.remote or ""
    host = request.headers.get("Host", "")
    scheme = "https" if request.secure else "http"
    client_ip = remote
    if _is_trusted(remote, trusted):
        forwarded_host = request.headers.get("X-Forwarded-Host")
        if forwarded_host:
            host = _last(forwarded_host)
        forwarded_proto = _last(request.headers.get("X-Forwarded-Proto", "")).lower()
        if forwarded_proto in {"http", "https"}:
            scheme = forwarded_proto
        forwarded_for = request.headers.get("X-Forwarded-For", "")
        if forwarded_for:
            client_ip = _client_ip(remote, forwarded_for, trusted)
    name, port = split_host(host)
    default_port = "443" if scheme == "https" else "80"
    if port is None or port == default_port:
        host = f"[{name}]" if ":" in name else name
    else:
        host = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    return Origin(scheme=scheme, host=host, client_ip=client_ip)


class TenantDirectory:
    """Looks tenants up by domain with a short in-process cache (tenants rarely change).

    The cache is bounded (least recently used out): anyone can send any Host, and unknown
    hosts must not grow memory.
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        ttl: float = 30.0,
        miss_ttl: float = 2.0,
        max_entries: int = 10_000,
    ):
        self._collection = db[Collections.TENANTS]
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._cache: Lru[str, tuple[float, Tenant | None]] = Lru(max_entries)

    async def by_domain(self, domain: str) -> Tenant | None:
        now = time.monotonic()
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > now:
            return cached[1]
        doc = await self._collection.find_one({"domain": domain})
        tenant = (
            Tenant(
                id=str(doc["_id"]), domain=doc["domain"], friendly_name=doc.get("friendly_name", "")
            )
            if doc
            else None
        )
        self._cache.put(domain, (now + (self._ttl if tenant else self._miss_ttl), tenant))
        return tenant

    def forget(self, domain: str) -> None:
        self._cache.pop(domain)


TENANT: web.RequestKey[Tenant] = web.RequestKey("tenant", Tenant)
ORIGIN: web.RequestKey[Origin] = web.RequestKey("origin", Origin)


def tenant_middleware(
    directory: Callable[[], TenantDirectory], trusted: tuple[IPNetwork, ...]
) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in INFRASTRUCTURE_PATHS:
            return await handler(request)
        origin = request_origin(request, trusted)
        request[ORIGIN] = origin
        tenant = await directory().by_domain(origin.hostname) if origin.hostname else None
        if tenant is None:
            return error_for_path(request.path, 404, f"Unknown tenant: {origin.hostname!r}")
        request[TENANT] = tenant
        return await handler(request)

    return middleware
