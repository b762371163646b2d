"""The Redis client every service uses, and what a Redis restart may lose.

Connections
-----------
`open_redis` gives one pooled asyncio client with short timeouts (2 s to connect, 2 s per
reply) and one immediate retry of a command that failed with a *connection* error. After
Redis restarts, every pooled connection is dead; without the retry each of them fails one
command ("Error UNKNOWN while writing to socket. Connection lost."), so the first requests
after the restart answer 503 although Redis is back. The retry runs the command again on a
fresh connection. It is safe because a connection error means the command did not reach a
live server (the socket was closed before or while it was written) in every case but one: a
server dying between executing a command and replying. Then the retried command runs twice;
every command these services send either is idempotent (GET, SET with a fixed value,
compare-and-set scripts, DEL) or errs on the safe side run twice (a rate-limit token spent
twice; the client-cap counter too high (by one, or by a batch of concurrent registrations
decided in one script call) until the reaper re-seeds it from MongoDB; a
`SET NX` claim that then reports "taken", so its request fails closed). Timeouts are never
retried: a command that timed out may have run, and a second wait would double the time a
request hangs while Redis is unreachable.

The pool holds at most `MAX_CONNECTIONS` connections and a command waits up to `POOL_WAIT`
seconds for a free one. (redis-py's default pool refuses at once, "Too many connections",
beyond 100 concurrent commands: a burst of requests got 503s with Redis perfectly healthy.)

What a restart may lose (decided per key family, `{REDIS_PREFIX}` omitted)
--------------------------------------------------------------------------
Redis is run with the append-only file on, `appendfsync everysec` (deploy/local/redis.conf;
a Redis in a container or on Kubernetes needs the same settings): a clean restart
(SIGTERM, `SHUTDOWN`) loses nothing, a crash of the machine loses at most the last second
of writes. Each family below states what it relies on.

Needs persistence (a loss would break a promise):
- `idempotency:{tenant}:{sha256}` (24 h): a retry with the same `Idempotency-Key` must
  replay the first answer, not register a second client.
- `client-events:journal` (until published): client events answered but not yet confirmed
  by RabbitMQ (`registration_service/events/client_events.py`); a loss would drop events a
  201 promised. Entries written in the second before a crash of Redis's machine may be lost
  (as any write here).
- `revoked-grant:{grant}` (an access token's lifetime): the access tokens of a revoked
  sign-in must stay refused at `/userinfo`.
- `session:*` (24 h): login sessions; a loss signs every user out at once.
- `authcode:*` (60 s) and `authcode:used:*` (24 h): a lost code fails its exchange (the
  client starts the sign-in again); a `used` marker written in the second before a crash
  may be lost, and the code redeemed twice while it lives (at most 60 s).

May be lost (each is rebuilt, or the loss costs one retry by a user):
- `interaction:*` (10 min): a login or consent in progress; the user starts again.
- `refresh-used:*`: MongoDB's `used_at` is the durable record of a refresh token's use and
  is checked first; the Redis claim only arbitrates two concurrent uses.
- `ratelimit:*`, `login-fail:*`: counters start afresh, at most one more window of tries.
- `dcr-clients:{tenant}` (1 h): the client cap's counter, re-seeded from MongoDB.
- `tenant:{id}:settings`: the settings cache, refilled from MongoDB (CAS on version).
- `lock:*`, `evicting:*` (seconds): a lock lost in a restart may let a second writer in;
  MongoDB's version conditions stay as the second guard.
- `cimd:*`: Client ID Metadata Documents, fetched again.

The first group decides it: Redis keeps its append-only file on. Only the second group could
live in a Redis without persistence.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# Seconds. A request that needs Redis while it is unreachable fails within these (and the
# error middleware answers 503), rather than hanging.
CONNECT_TIMEOUT = 2.0
REPLY_TIMEOUT = 2.0
# A pooled connection idle longer than this is PINGed before use: a dead one is then found
# by the (retried) PING rather than by a command.
HEALTH_CHECK_INTERVAL = 10
# Connections per process, and how long a command waits for one when all are busy.
MAX_CONNECTIONS = 200
POOL_WAIT = 2.0


def command_retry() -> Retry:
    """One immediate retry, on a fresh connection, of a command that failed with a
    connection error (never of a timeout: see the module docstring)."""
    return Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,))


def open_redis(url: str) -> Redis:
    """A pooled client for `url` (`redis://host:port/db`); connects lazily, never raises here.
    Closing the client (`aclose`) closes its pool."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT,
        socket_timeout=REPLY_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        # A pool built from a URL passes no retry policy down to its connections unless
        # given one (`Redis(...)` has a default, `from_url` does not): commands would never
        # be retried.
        retry=command_retry(),
    )
    return Redis.from_pool(pool)


# Redis's own clock, for stamps every replica must agree on whatever its host's clock says
# (rate-limit buckets, the client-event journal's scores). A Lua function that scripts
# composing it call as `now_ms()`; `redis_clock_ms` reads the same clock from Python.
NOW_MS_LUA = """
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
"""


async def redis_clock_ms(redis: Redis) -> int:
    """Redis's clock (`TIME`), in milliseconds since the epoch."""
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000
