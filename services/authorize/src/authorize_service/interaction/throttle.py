"""Brute-force protection of the login form, as Auth0's: blocks that hit the attacker, not the
account's owner (OWASP ASVS 2.2.1; issue 21 found the old per-account lockout a denial of
service: anyone who knew an address could keep its owner out).

Three fixed-window counters in Redis, all counted before the password is checked, in one
atomic step, so parallel requests cannot slip past a limit while hashes are being verified:

- per (account, client address): `MAX_FAILURES_PER_PAIR` failures block that address for that
  account until the window ends, the right password included. Another address, the owner's,
  is not affected. A successful login resets the pair.
- per client address, every account together: `MAX_FAILURES_PER_ADDRESS` failures block the
  address (credential stuffing across accounts); a successful login gives its count back.
- per account, every address together: past `ACCOUNT_CEILING` failures (a distributed
  attack), every attempt on the account is slowed by `ACCOUNT_SLOWDOWN_SECONDS` before its
  password is checked, never blocked, so its owner still gets in. Not reset by a success (the
  attack goes on).

The answer for an unknown email is the same as for a known one, so the throttle says nothing
about which accounts exist. An IPv6 client counts as its /64 (`client_key`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from oidc_common.address_buckets import client_key

from ..redis_store import RedisStore

WINDOW_SECONDS = 900
MAX_FAILURES_PER_PAIR = 10
MAX_FAILURES_PER_ADDRESS = 30
ACCOUNT_CEILING = 100
ACCOUNT_SLOWDOWN_SECONDS = 2.0


@dataclass(frozen=True)
class Verdict:
    """What a login attempt may do: `retry_after` > 0 refuses it (seconds, for
    `Retry-After`); otherwise it proceeds after `delay` seconds."""

    retry_after: int = 0
    delay: float = 0.0

    @property
    def blocked(self) -> bool:
        return self.retry_after > 0


class LoginThrottle(RedisStore):
    namespace = "login-fail"

    def _keys(self, tenant_id: str, email: str, client_ip: str) -> tuple[str, str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        address = client_key(client_ip)
        return (
            self.key(tenant_id, "pair", account, address),
            self.key(tenant_id, "ip", address),
            self.key(tenant_id, "acct", account),
        )

    async def attempt(self, tenant_id: str, email: str, client_ip: str) -> Verdict:
        """Count an attempt and say whether it may proceed (see the module docstring)."""
        keys = self._keys(tenant_id, email, client_ip)
        pipe = self._redis.pipeline(transaction=True)
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
        for key in keys[:2]:
            pipe.ttl(key)
        pair, _, address, _, account, _, pair_ttl, address_ttl = await pipe.execute()
        waits = [
            max(int(ttl), 1)
            for count, limit, ttl in (
                (pair, MAX_FAILURES_PER_PAIR, pair_ttl),
                (address, MAX_FAILURES_PER_ADDRESS, address_ttl),
            )
            if int(count) > limit
        ]
        if waits:
            return Verdict(retry_after=max(waits))
        return Verdict(delay=ACCOUNT_SLOWDOWN_SECONDS if int(account) > ACCOUNT_CEILING else 0.0)

    async def succeeded(self, tenant_id: str, email: str, client_ip: str) -> None:
        """A correct password: the pair starts afresh, the address gets its count back, the
        account's ceiling counts on (module docstring)."""
        pair_key, address_key, account_key = self._keys(tenant_id, email, client_ip)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(pair_key)
        pipe.decr(address_key)
        pipe.decr(account_key)
        await pipe.execute()
