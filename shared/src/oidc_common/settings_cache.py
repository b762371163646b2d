"""The tenant-settings cache in Redis, shared by every reader of tenant settings.

The entry `{prefix}tenant:{tenant_id}:settings` is a hash `{version, settings}` written only
by compare-and-set on version (a Lua script, atomic in Redis), so duplicated or out-of-order
events never move it backwards. A miss falls back to MongoDB and fills Redis the same way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from .mongo import Collections, Document

log = logging.getLogger(__name__)

# KEYS[1] = cache key; ARGV[1] = version; ARGV[2] = settings JSON. Returns 1 if written.
_CAS_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'settings', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class SettingsSnapshot:
    """One consistent version of a tenant's settings."""

    tenant_id: str
    version: int
    settings: dict[str, Any]

    @property
    def registration_enabled(self) -> bool:
        flags = self.settings.get("flags") or {}
        return flags.get("enable_dynamic_client_registration") is True


class SettingsUnavailable(RuntimeError):
    """Neither Redis nor MongoDB could say what the settings are."""


class SettingsCache:
    def __init__(self, redis: Redis, db: AsyncDatabase[Document], prefix: str = "") -> None:
        self._redis = redis
        self._db = db
        self._prefix = prefix
        self._cas = redis.register_script(_CAS_SCRIPT)

    def key(self, tenant_id: str) -> str:
        return f"{self._prefix}tenant:{tenant_id}:settings"

    async def apply(self, snapshot: SettingsSnapshot) -> bool:
        """Write `snapshot` unless Redis already holds the same or a newer version."""
        written = await self._cas(
            keys=[self.key(snapshot.tenant_id)],
            args=[snapshot.version, json.dumps(snapshot.settings, separators=(",", ":"))],
        )
        return bool(written)

    async def from_redis(self, tenant_id: str) -> SettingsSnapshot | None:
        raw = await self._redis.hmget(self.key(tenant_id), ["version", "settings"])
        version, settings = raw[0], raw[1]
        if version is None or settings is None:
            return None
        return SettingsSnapshot(tenant_id, int(version), json.loads(settings))

    async def from_mongodb(self, tenant_id: str) -> SettingsSnapshot | None:
        doc = await self._db[Collections.TENANT_SETTINGS].find_one(
            {"_id": tenant_id}, {"version": 1, "settings": 1}
        )
        if doc is None:
            return None
        return SettingsSnapshot(tenant_id, int(doc["version"]), dict(doc["settings"]))

    async def read(self, tenant_id: str, database_first: bool = False) -> SettingsSnapshot | None:
        """Redis, then (on a miss or a Redis failure) MongoDB, refilling Redis.

        With `database_first`, MongoDB is asked first and Redis only if it fails (used while
        events are not flowing, when Redis may be stale). Returns None for a tenant without
        settings; raises SettingsUnavailable when no source answers, so callers fail closed.
        """
        if database_first:
            try:
                stored = await self.from_mongodb(tenant_id)
            except Exception as exc:
                log.warning("settings read from the database failed", extra={"error": str(exc)})
            else:
                if stored is not None:
                    try:
                        await self.apply(stored)
                    except Exception as exc:
                        log.warning("settings cache refill failed", extra={"error": str(exc)})
                return stored
            try:
                return await self.from_redis(tenant_id)
            except Exception as exc:
                raise SettingsUnavailable(f"tenant settings unavailable: {exc}") from exc
        redis_failed = False
        try:
            cached = await self.from_redis(tenant_id)
            if cached is not None:
                return cached
        except Exception as exc:  # Redis down: MongoDB still knows the answer.
            redis_failed = True
            log.warning("settings cache read failed", extra={"error": str(exc)})
        try:
            stored = await self.from_mongodb(tenant_id)
        except Exception as exc:
            raise SettingsUnavailable(f"tenant settings unavailable: {exc}") from exc
        if stored is not None and not redis_failed:
            try:
                await self.apply(stored)
            except Exception as exc:
                log.warning("settings cache refill failed", extra={"error": str(exc)})
        return stored
