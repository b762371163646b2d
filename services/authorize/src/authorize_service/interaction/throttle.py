"""Throttling of failed logins, per account and per client IP (OWASP ASVS 2.2.1).

Counts failures only, in fixed windows in Redis. An account over its limit is refused even
with the right password until the window ends, and the answer for an unknown email is the
same as for a known one, so the throttle reveals nothing about which accounts exist.
"""

from __future__ import annotations

import hashlib

from ..redis_store import RedisStore

WINDOW_SECONDS = 900
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 30


class LoginThrottle(RedisStore):
    namespace = "login-fail"

    def _keys(self, tenant_id: str, email: str, client_ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.key(tenant_id, "acct", account), self.key(tenant_id, "ip", client_ip)

    async def blocked(self, tenant_id: str, email: str, client_ip: str) -> bool:
        account_key, ip_key = self._keys(tenant_id, email, client_ip)
        account, ip = await self._redis.mget([account_key, ip_key])
        return int(account or 0) >= MAX_FAILURES_PER_ACCOUNT or int(ip or 0) >= MAX_FAILURES_PER_IP

    async def failed(self, tenant_id: str, email: str, client_ip: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in self._keys(tenant_id, email, client_ip):
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
        await pipe.execute()

    async def succeeded(self, tenant_id: str, email: str, client_ip: str) -> None:
        await self._redis.delete(self._keys(tenant_id, email, client_ip)[0])
