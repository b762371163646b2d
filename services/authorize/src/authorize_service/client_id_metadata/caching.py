"""How long a fetched document is kept, and the Redis cache that keeps it (draft -02 §5.2).

A document is kept for its HTTP freshness lifetime (RFC 9111 §4.2.1: `s-maxage`, else
`max-age`, else `Expires` - `Date`; less its `Age`; `no-store` and `no-cache` count as 0),
clamped to the tenant's bounds (`client_id_metadata_min_cache_seconds` .. `_max_`): a document
without caching headers is kept for the minimum. A lifetime of 0 is not stored.

Failures are remembered briefly too (FAILURE_TTL), per tenant and URL, and failures of the host
itself (timeouts, connections, TLS, addresses) for the whole origin (host and port) within the
tenant: the next requests are refused at once instead of each waiting on a slow host, and one
request naming a dead port cannot block another port's or another tenant's documents.
§5.2's "MUST NOT cache error responses" is kept in what matters: an error answer or invalid
document is never used as client metadata; all a failure entry does is say "refused, try again
shortly" without fetching.

Keys: `{REDIS_PREFIX}cimd:doc:{tenant}:{sha256(url)}`, `…cimd:fail:{tenant}:{sha256(url)}`,
`…cimd:host:{tenant}:{host}:{port}`.
"""

from __future__ import annotations

import email.utils
import hashlib
from dataclasses import dataclass
from typing import Final

from multidict import MultiMapping

from ..redis_store import RedisStore

FAILURE_TTL: Final = 30  # seconds; short, so a fixed document is picked up soon


def _directives(cache_control: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in cache_control.split(","):
        name, equals, value = part.strip().partition("=")
        if name:
            directives.setdefault(
                name.strip().lower(), value.strip().strip('"') if equals else None
            )
    return directives


def _seconds(value: str | None) -> int:
    # RFC 9111 §1.2.2: delta-seconds; anything else makes the response stale (0).
    return int(value) if value is not None and value.isascii() and value.isdigit() else 0


def freshness_lifetime(headers: MultiMapping[str]) -> int | None:
    """Seconds the response stays fresh by its own headers (RFC 9111 §4.2.1, §4.2.3, read as a
    shared cache would); None when it says nothing."""
    directives = _directives(",".join(headers.getall("Cache-Control", [])))
    if "no-store" in directives or "no-cache" in directives:
        return 0
    if "s-maxage" in directives:
        lifetime = _seconds(directives["s-maxage"])
    elif "max-age" in directives:
        lifetime = _seconds(directives["max-age"])
    elif "Expires" in headers:
        lifetime = _expires_minus_date(headers["Expires"], headers.get("Date"))
    else:
        return None
    return max(0, lifetime - _seconds(headers.get("Age", "0")))


def _expires_minus_date(expires: str, date: str | None) -> int:
    try:
        expires_at = email.utils.parsedate_to_datetime(expires)
        sent_at = email.utils.parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return 0  # an invalid Expires means already expired (RFC 9111 §5.3)
    if sent_at is None:
        return 0
    return int((expires_at - sent_at).total_seconds())


def cache_seconds(lifetime: int | None, minimum: int, maximum: int) -> int:
    """`lifetime` (None: no caching headers, the minimum) clamped to [minimum, maximum]; the
    maximum wins when a tenant sets them the wrong way round."""
    return min(max(lifetime if lifetime is not None else minimum, minimum), maximum)


@dataclass(frozen=True)
class CachedOutcome:
    """A cached document (the JSON text as fetched) or a remembered failure's message."""

    document: str | None = None
    failure: str | None = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


class DocumentCache(RedisStore):
    namespace = "cimd"

    async def lookup(self, tenant_id: str, url: str, host: str) -> CachedOutcome | None:
        """A remembered failure (of this URL, or of its host) or document; None to fetch."""
        digest = _digest(url)
        failure, host_failure, document = await self._redis.mget(
            [
                self.key("fail", tenant_id, digest),
                self.key("host", tenant_id, host),
                self.key("doc", tenant_id, digest),
            ]
        )
        failure = failure if failure is not None else host_failure
        if failure is not None:
            return CachedOutcome(failure=_text(failure))
        if document is not None:
            return CachedOutcome(document=_text(document))
        return None

    async def keep_document(self, tenant_id: str, url: str, text: str, seconds: int) -> None:
        if seconds > 0:
            await self._redis.set(self.key("doc", tenant_id, _digest(url)), text, ex=seconds)

    async def keep_failure(
        self, tenant_id: str, url: str, host: str, message: str, *, host_wide: bool
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self.key("fail", tenant_id, _digest(url)), message, ex=FAILURE_TTL)
        pipe.delete(self.key("doc", tenant_id, _digest(url)))
        if host_wide:
            pipe.set(self.key("host", tenant_id, host), message, ex=FAILURE_TTL)
        await pipe.execute()
