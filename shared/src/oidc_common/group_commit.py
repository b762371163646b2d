"""Group commit: concurrent requests share one round trip to a backing service.

A request hands its item to a `GroupCommit` and awaits its own outcome. While one flush is
in flight the next items gather in a queue; when it returns, the requests waiting on it
take their next step, then everything queued (up to `max_batch`) goes out in the next
flush (one awaiting through `asyncio.shield` resumes a step later, once it has started). At
concurrency 1 a batch is a single item and no latency is added; under load a round trip
carries many items, so the client library's per-call CPU (framing, futures, pool
bookkeeping) is paid once per batch instead of once per request. Each request learns only
its own item's outcome: the flush function returns one result or exception per item, in
order.

Used for client inserts (`registration_service/clients/batching.py`), the registration
admission script (`registration_service/abuse/admission.py`) and client events
(`registration_service/events/client_events.py`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# One flush: the items in submission order -> one outcome (or exception) per item.
Flush = Callable[[list[Item]], Awaitable[Sequence[Outcome | BaseException]]]


class GroupCommit(Generic[Item, Outcome]):
    def __init__(
        self,
        flush: Flush[Item, Outcome],
        *,
        max_batch: int = 64,
        sheds_queue: Callable[[BaseException], bool] | None = None,
    ) -> None:
        """`flush` sends one batch (raising fails the whole batch with that exception);
        `sheds_queue(exc)` says whether an exception a flush raised should also fail what
        queued meanwhile at once (the service is unreachable: each would only wait again)."""
        self._flush = flush
        self._max_batch = max_batch
        self._sheds_queue = sheds_queue
        self._queue: collections.deque[tuple[Item, asyncio.Future[Outcome]]] = collections.deque()
        # The task flushing the queue, if any (referenced, so it cannot be collected).
        self._flusher: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Items queued, not yet handed to a flush."""
        return len(self._queue)

    async def submit(self, item: Item) -> Outcome:
        """Queue `item`; returns its outcome once its batch was flushed, or raises the
        exception its flush gave it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((item, future))
        if self._flusher is None:
            # A context of its own: the flusher outlives this request (its request id
            # must not tag the log lines of later batches).
            flusher = loop.create_task(self._flush_all(), context=contextvars.Context())
            flusher.add_done_callback(self._flusher_ended)
            self._flusher = flusher
        return await future

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queued and in-flight batch (shutdown);
        True if none is left. An item whose request was cancelled before its batch formed
        is dropped (nobody waits for it); one already in flight completes."""
        flusher = self._flusher
        if flusher is None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flusher), timeout)
        return self._flusher is None

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch = self._take_batch()
                if not batch:
                    continue
                try:
                    outcomes = await self._flush([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
                except Exception as exc:
                    _fail(batch, exc)
                    if self._sheds_queue is not None and self._sheds_queue(exc):
                        _fail(self._queue, exc)
                        self._queue.clear()
                except BaseException:  # cancelled (shutdown): nobody is left waiting
                    self._cancel_all(batch)
                    raise
                else:
                    _deliver(batch, outcomes)
                if self._queue:
                    # Let the requests just answered take their next step before the next
                    # flush: starting one costs the client library CPU before its first
                    # await (~250 µs for PyMongo's insert_many), which every one of them
                    # would otherwise wait out. Their answers go out sooner and the next
                    # batch gathers what arrived meanwhile. Registration at c=16
                    # (`make bench-ab`, 3 runs of 8 alternating rounds): req/s x1.00,
                    # x1.08, x1.08; server CPU per registration x0.97, x0.88, x0.95.
                    try:
                        await asyncio.sleep(0)
                    except BaseException:
                        self._cancel_all([])
                        raise
        finally:
            self._flusher = None

    def _flusher_ended(self, flusher: asyncio.Task[None]) -> None:
        """A flusher cancelled before it ever ran (shutdown) skipped `_flush_all` and its
        clean-up: cancel what it left queued, and let a later `submit` start another."""
        if self._flusher is flusher:
            self._flusher = None
            if flusher.cancelled():
                self._cancel_all([])

    def _cancel_all(self, batch: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        """Cancelled (shutdown): nobody is left waiting for `batch` or the queue."""
        for _, future in [*batch, *self._queue]:
            future.cancel()
        self._queue.clear()

    def _take_batch(self) -> list[tuple[Item, asyncio.Future[Outcome]]]:
        """The next batch, without the items whose request was cancelled meanwhile (an
        admission nobody waits for must not spend a token or hold a place)."""
        batch: list[tuple[Item, asyncio.Future[Outcome]]] = []
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            if not entry[1].done():
                batch.append(entry)
        return batch


def _deliver(
    batch: list[tuple[Item, asyncio.Future[Outcome]]], outcomes: Sequence[Outcome | BaseException]
) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # its request was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _fail(batch: Iterable[tuple[Item, asyncio.Future[Outcome]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
