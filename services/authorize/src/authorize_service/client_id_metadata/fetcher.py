"""Fetching a Client ID Metadata Document over https, within limits (draft -02 §5, §8.6, §8.7).

- https only, TLS verified against the system trust store plus `CIMD_CA_FILE`, TLS 1.2+;
- the host is resolved first and must resolve only to public addresses (`addresses.py`,
  relaxed for CIMD_PRIVATE_HOSTS); the connection goes to exactly those addresses: the
  connector's resolver answers with them and nothing else, so DNS is not asked twice;
- no redirect is followed, not even to the same host (§5: MUST NOT follow redirects);
- 200 only, `application/json` or `application/*+json`, no content coding (a compressed body
  could inflate past the size cap before it is counted);
- at most `max_bytes` (5 KiB, §8.7), counted while reading; `timeout_seconds` for the whole
  fetch, resolution and any wait for a free fetch slot included;
- no proxy from the environment, no cookies, a new connection each time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy
from yarl import URL

from oidc_common.config import ConfigError, Settings

from .addresses import IPAddress, Resolve, checked_addresses, system_resolve
from .errors import FetchFailed
from .urls import ClientIdUrl

log = logging.getLogger(__name__)

USER_AGENT: Final = "oidc-provider client-id-metadata-document fetcher"
MAX_CONCURRENT_FETCHES: Final = 16  # per process: a flood of new URLs waits, then times out


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 5.0
    max_bytes: int = 5 * 1024  # the draft's recommendation (§8.7)


@dataclass(frozen=True)
class FetchedDocument:
    """A 200 answer's body (at most `max_bytes`) and the headers that say how long it may be
    cached (RFC 9111)."""

    body: bytes
    headers: CIMultiDictProxy[str] = field(repr=False)


class PinnedResolver(AbstractResolver):
    """The connector's resolver: the addresses already checked for `host`, nothing else."""

    def __init__(self, host: str, addresses: tuple[IPAddress, ...]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".") != self._host.rstrip("."):
            raise OSError(f"{host} was not checked")  # only the document's host is reached
        results: list[ResolveResult] = []
        for address in self._addresses:
            address_family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, address_family):
                continue
            results.append(
                {
                    "hostname": host,
                    "host": str(address),
                    "port": port,
                    "family": address_family,
                    "proto": socket.IPPROTO_TCP,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        if not results:
            raise OSError(f"no checked address of {host} for this address family")
        return results

    async def close(self) -> None:
        return None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system trust store plus `ca_file` (a PEM bundle), hostname checked, TLS 1.2+.
    Raises ConfigError when `ca_file` cannot be read as certificates."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"CIMD_CA_FILE: cannot load {ca_file!r}: {exc}") from exc
    return context


def _is_json(content_type: str) -> bool:
    # aiohttp's `content_type` is the lowercase media type without parameters.
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


class DocumentFetcher:
    """Fetches documents under the rules of the module docstring. `resolve` and `limits` are
    attributes so tests can map a test host name to an address and shorten the timeout."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        private_hosts: frozenset[str] = frozenset(),
        *,
        resolve: Resolve = system_resolve,
        limits: FetchLimits = FetchLimits(),
    ) -> None:
        self._ssl = ssl_context
        self._private_hosts = private_hosts
        self.resolve = resolve
        self.limits = limits
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentFetcher:
        return cls(tls_context(settings.cimd_ca_file), frozenset(settings.cimd_private_hosts))

    async def fetch(self, url: ClientIdUrl) -> FetchedDocument:
        """GET `url.url`; the body of a 200 JSON answer within the limits.

        Raises FetchFailed with a sentence for the user (host-wide for resolution, address,
        connection, TLS and timeout failures)."""
        limits = self.limits
        try:
            async with asyncio.timeout(limits.timeout_seconds):
                async with self._slots:
                    return await self._fetch(url, limits)
        except TimeoutError:
            raise FetchFailed(
                f"{url.host} did not answer within {limits.timeout_seconds:g} seconds.",
                host_wide=True,
            ) from None
        except aiohttp.ClientSSLError as exc:
            log.info("metadata document TLS failure", extra={"url": url.url, "error": str(exc)})
            raise FetchFailed(
                f"The TLS certificate of {url.host} could not be verified.", host_wide=True
            ) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            log.info("metadata document not fetched", extra={"url": url.url, "error": str(exc)})
            raise FetchFailed(f"Could not connect to {url.host}.", host_wide=True) from None
        except aiohttp.ClientError as exc:
            log.info("metadata document not fetched", extra={"url": url.url, "error": str(exc)})
            raise FetchFailed(f"{url.host} did not send a readable HTTP answer.") from None

    async def _fetch(self, url: ClientIdUrl, limits: FetchLimits) -> FetchedDocument:
        host, port = url.connects_to
        addresses = await checked_addresses(
            host, port, resolve=self.resolve, allow_private=host in self._private_hosts
        )
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(host, addresses),
            ssl=self._ssl,
            use_dns_cache=False,
            force_close=True,
            limit=1,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,  # never a proxy from the environment
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout in fetch bounds it all
        )
        request = session.get(
            URL(url.url, encoded=True),  # as sent: the document's URL is compared exactly
            allow_redirects=False,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "identity",
                "User-Agent": USER_AGENT,
            },
        )
        async with session, request as response:
            return FetchedDocument(await self._read(response, url, limits), response.headers)

    @staticmethod
    async def _read(
        response: aiohttp.ClientResponse, url: ClientIdUrl, limits: FetchLimits
    ) -> bytes:
        if 300 <= response.status < 400:
            raise FetchFailed(
                f"{url.url} answered with a redirect (HTTP {response.status}); redirects are "
                "not followed: the document must be served at the client_id URL itself."
            )
        if response.status != 200:
            raise FetchFailed(
                f"{url.url} answered HTTP {response.status}; a metadata document must be "
                "served with 200 OK."
            )
        if not _is_json(response.content_type):
            raise FetchFailed(
                f"{url.url} is served as {response.content_type or 'no content type'}; a "
                "metadata document must be application/json."
            )
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise FetchFailed(f"{url.url} was sent with a content coding; send it uncompressed.")
        too_large = FetchFailed(
            f"The metadata document at {url.url} is larger than {limits.max_bytes} bytes."
        )
        if (response.content_length or 0) > limits.max_bytes:
            raise too_large
        body = bytearray()
        while chunk := await response.content.read(limits.max_bytes + 1 - len(body)):
            body += chunk
            if len(body) > limits.max_bytes:
                raise too_large
        return bytes(body)
