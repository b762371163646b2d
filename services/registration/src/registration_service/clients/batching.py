"""Group commit for client inserts.

The embedded database commits each insert on its own (about 900 per second here), but
commits a batch of inserts almost as fast as one (a batch of 16 about 5,500 documents per
second). Concurrent registrations therefore queue their document; while one `insert_many`
is in flight the next batch gathers, and each request is answered only once its own
document is acknowledged, so nothing is acknowledged that is not stored. At concurrency 1 a
batch is a single document and no latency is added.

A batch whose connection is lost (the database restarted under it) is inserted once more:
the documents carry their own fresh random `_id`, so a document the first attempt had
already stored comes back as a duplicate `_id`, which here means "stored", never a second
copy. This holds because `_id` is the collection's only unique index (FerretDB's
duplicate-key errors do not name the index, so the batcher cannot tell them apart).
When a batch finds no database at all (server selection timed out), the documents queued
behind it fail with it at once rather than wait the same timeout again each: a request
waits for the database at most about one server-selection timeout (3 s), then answers 503.
At shutdown `drain` waits for the batches queued or in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, ServerSelectionTimeoutError

from oidc_common.mongo import is_lost_connection

log = logging.getLogger(__name__)

Document = dict[str, Any]
DUPLICATE_KEY = 11000


class InsertBatcher:
    def __init__(self, collection: AsyncCollection[Document], max_batch: int = 64) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self._queue: list[tuple[Document, asyncio.Future[None]]] = []
        # The task flushing the queue, if any (referenced, so it cannot be collected).
        self._flusher: asyncio.Task[None] | None = None

    async def insert(self, doc: Document) -> None:
        """Store `doc` (with its `_id` set); returns once the database acknowledged it.

        Raises DuplicateKeyError, BulkWriteError for another write error, or the
        connection error of a batch that could not be stored (the caller answers 503)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((doc, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_all())
        await future

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queued and in-flight batch; True if none
        is left. A request cancelled at the end of the grace period leaves its document
        queued: it is still written (nobody hears of it; the reaper removes an unused client)."""
        flusher = self._flusher
        if flusher is None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flusher), timeout)
        return self._flusher is None

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                unreachable = await self._flush(batch)
                if unreachable is not None:  # what queued meanwhile would only wait again
                    queued, self._queue = self._queue, []
                    _fail_all(queued, unreachable)
        finally:
            self._flusher = None

    async def _flush(
        self, batch: list[tuple[Document, asyncio.Future[None]]]
    ) -> ServerSelectionTimeoutError | None:
        """Insert one batch and resolve its requests; the error when no database could be
        found at all (None otherwise)."""
        docs = [doc for doc, _ in batch]
        try:
            await self._collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            _settle(batch, exc, retried=False)
            return None
        except Exception as exc:
            if not is_lost_connection(exc):
                _fail_all(batch, exc)
                return exc if isinstance(exc, ServerSelectionTimeoutError) else None
            log.info("client batch lost its connection, inserting again", extra={"n": len(docs)})
            try:
                await self._collection.insert_many(docs, ordered=False)
            except BulkWriteError as again:
                _settle(batch, again, retried=True)
                return None
            except Exception as again:  # the whole batch failed: every request learns it
                _fail_all(batch, again)
                return again if isinstance(again, ServerSelectionTimeoutError) else None
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        return None


def _settle(
    batch: list[tuple[Document, asyncio.Future[None]]], exc: BulkWriteError, *, retried: bool
) -> None:
    """Resolve each request of a batch the database partly refused. On a second attempt a
    duplicate `_id` is the first attempt's own insert (see the module docstring)."""
    failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        error = failed.get(index)
        if error is None or (retried and error.get("code") == DUPLICATE_KEY):
            future.set_result(None)
        elif error.get("code") == DUPLICATE_KEY:
            future.set_exception(DuplicateKeyError(error.get("errmsg", "duplicate key")))
        else:
            future.set_exception(BulkWriteError({"writeErrors": [error]}))


def _fail_all(batch: list[tuple[Document, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
