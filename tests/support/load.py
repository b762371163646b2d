"""Bounded load through the gateway, for the scale-out and fault tests, and what it saw.

Every request's answer is kept (`Answer`): the tests judge them by when they started
relative to an event (a replica stopped, a backing service cut) and check afterwards that
each client answered 201 is stored exactly once and announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage

from oidc_common.events import Event

from .gateway import json_or_text

REGISTRATION_BODY = {
    "client_name": "Load client",
    "redirect_uris": ["https://load.example.com/callback"],
}
# Room for every registration of a test run from one address, and no evictions.
OPEN_POLICY = {
    "flags": {"enable_dynamic_client_registration": True},
    "dynamic_client_registration": {
        "rate_limit": {"requests": 100_000, "window_seconds": 60},
        "max_clients": 1_000_000,
    },
}


@dataclass(frozen=True)
class Answer:
    """One request and its answer; `status` 0 when none came (connection error, timeout)."""

    kind: str  # "register" or "patch"
    started: float  # time.monotonic() when sent
    seconds: float  # until the answer (or the failure)
    status: int
    body: Any
    retry_after: str | None = None
    key: str | None = None  # the Idempotency-Key sent, if any
    error: str = ""

    @property
    def client_id(self) -> str | None:
        if self.kind == "register" and self.status == 201 and isinstance(self.body, dict):
            return str(self.body["client_id"])
        return None


@dataclass
class Gateway:
    """HTTP to the local nginx gateway as the tenant `localhost` (or straight to a replica)."""

    session: aiohttp.ClientSession
    port: int
    timeout: float = 20.0

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    async def request(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        port: int | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> Answer:
        """`method path` on the gateway (or on `port`, a service's own); never raises."""
        started = time.monotonic()
        key = (headers or {}).get("Idempotency-Key")
        try:
            async with self.session.request(
                method,
                f"http://127.0.0.1:{port or self.port}{path}",
                headers={"Host": self.host, **(headers or {})},
                json=json,
                data=data,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                body = await json_or_text(response)
                return Answer(
                    kind,
                    started,
                    time.monotonic() - started,
                    response.status,
                    body,
                    response.headers.get("Retry-After"),
                    key,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Answer(kind, started, time.monotonic() - started, 0, None, None, key, repr(exc))

    async def register(self, *, port: int | None = None, idempotent: bool = False) -> Answer:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if idempotent else {}
        return await self.request(
            "register", "POST", "/oidc/register", port=port, headers=headers, json=REGISTRATION_BODY
        )

    async def replay(self, key: str) -> Answer:
        """The same registration again with its Idempotency-Key."""
        return await self.request(
            "register",
            "POST",
            "/oidc/register",
            headers={"Idempotency-Key": key},
            json=REGISTRATION_BODY,
        )

    async def management_token(self, creds: dict[str, str]) -> str:
        answer = await self.request(
            "token",
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "audience": f"http://{self.host}/api/v2/",
            },
        )
        assert answer.status == 200, answer
        token: str = answer.body["access_token"]
        return token

    async def patch_settings(self, token: str, body: dict[str, Any]) -> Answer:
        return await self.request(
            "patch",
            "PATCH",
            "/api/v2/tenants/settings",
            headers={"Authorization": f"Bearer {token}"},
            json=body,
        )


@dataclass
class Load:
    """Workers sending one kind of request each until stopped (or `limit` answers)."""

    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(
        self,
        job: Callable[[], Awaitable[Answer]],
        workers: int,
        *,
        pause: float = 0.0,
        limit: int | None = None,
    ) -> None:
        async def worker() -> None:
            while not self.stop.is_set():
                if limit is not None and len(self.answers) >= limit:
                    self.stop.set()
                    return
                self.answers.append(await job())
                if pause:
                    await asyncio.sleep(pause)

        self._tasks += [asyncio.create_task(worker()) for _ in range(workers)]

    async def wait(self, timeout: float) -> None:
        """Let the workers run until they stop (limit) or `timeout` seconds passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout)
        await self.finish()

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)
        self._tasks.clear()

    def statuses(self, kind: str | None = None) -> Counter[int]:
        return Counter(a.status for a in self.answers if kind is None or a.kind == kind)


@dataclass
class Seen:
    """Events received: client events counted per client in `data.client_ids`, settings versions."""

    clients: Counter[str] = field(default_factory=Counter)
    versions: set[int] = field(default_factory=set)


@contextlib.asynccontextmanager
async def collect_events(rabbitmq_url: str, exchange: str, routing_key: str) -> AsyncIterator[Seen]:
    """The events of `routing_key` on `exchange`, from a queue of the test's own bound before
    anything is sent (straight to the broker, not through any proxy the test cuts)."""
    seen = Seen()
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(topic, routing_key=routing_key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process():
                event = Event.from_json(message.body)
                for client_id in event.data.get("client_ids", ()):
                    seen.clients[str(client_id)] += 1
                seen.versions.add(event.version)

        await queue.consume(on_message)
        yield seen
    finally:
        await connection.close()


_SAMPLE = re.compile(
    r"^http_requests_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.MULTILINE
)


async def served(session: aiohttp.ClientSession, port: int, route: str, status: str) -> int:
    """How many requests of `route` a service process answered with `status` (its
    /metrics); 0 when it does not answer (stopped)."""
    try:
        async with session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return 0
    total = 0
    for match in _SAMPLE.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("route") == route and labels.get("status") == status:
            total += int(float(match["value"]))
    return total
