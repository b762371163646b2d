"""The base of every short-lived store of this service in Redis (codes, sessions, throttles).

Each store owns one namespace of keys, `{REDIS_PREFIX}{namespace}:{part}:…`; the prefix lets
tests and tenants of a shared Redis keep apart.
"""

from __future__ import annotations

from typing import ClassVar

from redis.asyncio import Redis


class RedisStore:
    namespace: ClassVar[str]

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def key(self, *parts: str) -> str:
        return ":".join((f"{self._prefix}{self.namespace}", *parts))
