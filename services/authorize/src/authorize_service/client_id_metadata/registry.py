"""Clients named by their metadata document: the cache first, else a guarded fetch."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from oidc_common.config import Settings
from oidc_common.registration_policy import RegistrationPolicy

from ..registered_clients import RegisteredClient
from .caching import DocumentCache, cache_seconds, freshness_lifetime
from .documents import client_from_document, parse_document
from .errors import FetchFailed, MetadataDocumentError
from .fetcher import DocumentFetcher
from .urls import ClientIdUrl

log = logging.getLogger(__name__)


class ClientIdMetadata:
    """The authorize service's metadata-document clients (one per application)."""

    def __init__(self, fetcher: DocumentFetcher, cache: DocumentCache) -> None:
        self.fetcher = fetcher
        self.cache = cache

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> ClientIdMetadata:
        """Raises ConfigError when CIMD_CA_FILE cannot be loaded (at start-up, not later)."""
        return cls(
            DocumentFetcher.from_settings(settings), DocumentCache(redis, settings.redis_prefix)
        )

    async def client(
        self, tenant_id: str, url: ClientIdUrl, policy: RegistrationPolicy
    ) -> RegisteredClient:
        """The client `url` describes for `tenant_id`: from a cached document while it is
        fresh, else fetched, checked and cached for its lifetime within the tenant's bounds.
        The document is checked on every use, so a policy change applies to cached ones.

        Raises MetadataDocumentError (remembered for FAILURE_TTL seconds when it comes from the
        fetch or the document)."""
        cached = await self.cache.lookup(tenant_id, url.url, url.origin)
        if cached is not None and cached.failure is not None:
            raise MetadataDocumentError(cached.failure)
        if cached is not None and cached.document is not None:
            return client_from_document(
                url, parse_document(url, cached.document), tenant_id, policy
            )
        try:
            fetched = await self.fetcher.fetch(url)
            client = client_from_document(url, parse_document(url, fetched.body), tenant_id, policy)
        except MetadataDocumentError as exc:
            host_wide = isinstance(exc, FetchFailed) and exc.host_wide
            log.info(
                "client id metadata document refused",
                extra={"tenant_id": tenant_id, "url": url.url, "reason": exc.detail},
            )
            await self.cache.keep_failure(
                tenant_id, url.url, url.origin, exc.detail, host_wide=host_wide
            )
            raise
        seconds = cache_seconds(
            freshness_lifetime(fetched.headers),
            policy.client_id_metadata_min_cache_seconds,
            policy.client_id_metadata_max_cache_seconds,
        )
        await self.cache.keep_document(tenant_id, url.url, fetched.body.decode(), seconds)
        return client
