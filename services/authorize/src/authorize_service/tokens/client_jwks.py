"""A private_key_jwt client's keys when it registered `jwks_uri` (RFC 7591 §2) instead of
`jwks`: fetched under the metadata-document fetcher's rules (https only, TLS verified,
public addresses only unless the host is in CIMD_PRIVATE_HOSTS, no redirect, a size cap, a
timeout), kept `CACHE_SECONDS` per client and URL, and fetched again when an assertion names
a `kid` the cached set does not have, at most once per `REFETCH_GAP_SECONDS` (a client cannot
make this provider fetch on every request).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final
from urllib.parse import urlsplit

from oidc_common.config import Settings
from oidc_common.lru import Lru

from ..client_id_metadata.errors import FetchFailed
from ..client_id_metadata.fetcher import DocumentFetcher, FetchLimits, tls_context
from ..client_id_metadata.urls import ClientIdUrl

CACHE_SECONDS: Final = 300
REFETCH_GAP_SECONDS: Final = 30
MAX_JWKS_BYTES: Final = 64 * 1024
MAX_CACHED_CLIENTS: Final = 10_000


class JwksUnavailable(Exception):
    """The client's JWK Set could not be fetched or read; the message says why."""


class ClientJwks:
    def __init__(self, fetcher: DocumentFetcher) -> None:
        self.fetcher = fetcher
        # (client_id, uri) -> (fetched at, monotonic seconds; the JWK Set)
        self._cache: Lru[tuple[str, str], tuple[float, dict[str, Any]]] = Lru(MAX_CACHED_CLIENTS)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientJwks:
        limits = FetchLimits(timeout_seconds=5.0, max_bytes=MAX_JWKS_BYTES)
        fetcher = DocumentFetcher(
            tls_context(settings.cimd_ca_file),
            frozenset(settings.cimd_private_hosts),
            limits=limits,
        )
        return cls(fetcher)

    async def keys(self, client_id: str, uri: str, kid: object) -> dict[str, Any]:
        """The JWK Set at `uri` for `client_id`, fetched again for an unknown `kid`."""
        cached = self._cache.get((client_id, uri))
        now = time.monotonic()
        if cached is not None:
            fetched_at, jwks = cached
            fresh = now - fetched_at < CACHE_SECONDS
            known = not isinstance(kid, str) or any(
                isinstance(key, dict) and key.get("kid") == kid for key in jwks.get("keys") or ()
            )
            if fresh and (known or now - fetched_at < REFETCH_GAP_SECONDS):
                return jwks
        jwks = await self._fetch(uri)
        self._cache.put((client_id, uri), (now, jwks))
        return jwks

    async def _fetch(self, uri: str) -> dict[str, Any]:
        parts = urlsplit(uri)
        if parts.scheme != "https" or not parts.hostname:
            raise JwksUnavailable("jwks_uri must be an https URL")
        url = ClientIdUrl(uri, parts.hostname, parts.port or 443)
        try:
            fetched = await self.fetcher.fetch(url)
            document = json.loads(fetched.body)
        except FetchFailed as exc:
            raise JwksUnavailable(f"jwks_uri could not be fetched: {exc}") from exc
        except ValueError as exc:
            raise JwksUnavailable("jwks_uri did not answer a JSON JWK Set") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailable("jwks_uri did not answer a JWK Set")
        return document
