"""Throttling of login attempts, per account and per client address (OWASP ASVS 2.2.1).

An attempt is counted before the password is checked, in one atomic step for both counters
(fixed windows in Redis), so parallel requests cannot slip past the limit while hashes are
being verified; a successful login gives its count back. An account over its limit is refused
even with the right password until the window ends, and the answer for an unknown email is
the same as for a known one, so the throttle says nothing about which accounts exist.
"""

from __future__ import annotations

import hashlib

from oidc_common.address_buckets import client_key

from ..redis_store import RedisStore

WINDOW_SECONDS = 900
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 30


class LoginThrottle(RedisStore):
    namespace = "login-fail"

    def _keys(self, tenant_id: str, email: str, client_ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return (
            self.key(tenant_id, "acct", account),
            self.key(tenant_id, "ip", client_key(client_ip)),  # an IPv6 host holds a /64
        )

    async def attempt(self, tenant_id: str, email: str, client_ip: str) -> int:
        """Count an attempt. Returns 0 when it may proceed, else the seconds until the account
        or the address is allowed again (for `Retry-After`)."""
        account_key, ip_key = self._keys(tenant_id, email, client_ip)
        pipe = self._redis.pipeline(transaction=True)
        for key in (account_key, ip_key):
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
        pipe.ttl(account_key)
        pipe.ttl(ip_key)
        account, _, ip, _, account_ttl, ip_ttl = await pipe.execute()
        waits = [
            max(int(ttl), 1)
            for count, limit, ttl in (
                (account, MAX_FAILURES_PER_ACCOUNT, account_ttl),
                (ip, MAX_FAILURES_PER_IP, ip_ttl),
            )
            if int(count) > limit
        ]
        return max(waits, default=0)

    async def succeeded(self, tenant_id: str, email: str, client_ip: str) -> None:
        """A correct password: the account starts afresh, the address gets its count back."""
        account_key, ip_key = self._keys(tenant_id, email, client_ip)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(account_key)
        pipe.decr(ip_key)
        await pipe.execute()
