"""Group commit for client inserts.

The embedded database commits each insert on its own (about 900 per second here), but
commits a batch of inserts almost as fast as one (a batch of 16 about 5,500 documents per
second). Concurrent registrations therefore queue their document
(`oidc_common.group_commit`): while one `insert_many` is in flight the next batch gathers,
and each request is answered only once its own document is acknowledged, so nothing is
acknowledged that is not stored. At concurrency 1 a batch is a single document and no
latency is added.

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

import logging
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, ServerSelectionTimeoutError

from oidc_common.group_commit import GroupCommit
from oidc_common.mongo import is_lost_connection

log = logging.getLogger(__name__)

Document = dict[str, Any]
DUPLICATE_KEY = 11000


class InsertBatcher:
    def __init__(self, collection: AsyncCollection[Document], max_batch: int = 64) -> None:
        self._collection = collection
        self._commit: GroupCommit[Document, None] = GroupCommit(
            self._insert_batch,
            max_batch=max_batch,
            sheds_queue=lambda exc: isinstance(exc, ServerSelectionTimeoutError),
        )

    async def insert(self, doc: Document) -> None:
        """Store `doc` (with its `_id` set); returns once the database acknowledged it.

        Raises DuplicateKeyError, BulkWriteError for another write error, or the
        connection error of a batch that could not be stored (the caller answers 503)."""
        await self._commit.submit(doc)

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queued and in-flight batch; True if none
        is left. A request cancelled at the end of the grace period leaves its document
        queued: it is still written (nobody hears of it; the reaper removes an unused client)."""
        return await self._commit.drain(timeout)

    async def _insert_batch(self, docs: list[Document]) -> Sequence[BaseException | None]:
        """Insert one batch: one outcome per document. Raises the connection error when the
        whole batch failed (a lost connection is retried once first)."""
        try:
            await self._collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            return _outcomes(len(docs), exc, retried=False)
        except Exception as exc:
            if not is_lost_connection(exc):
                raise
            log.info("client batch lost its connection, inserting again", extra={"n": len(docs)})
            try:
                await self._collection.insert_many(docs, ordered=False)
            except BulkWriteError as again:
                return _outcomes(len(docs), again, retried=True)
        return [None] * len(docs)


def _outcomes(n: int, exc: BulkWriteError, *, retried: bool) -> list[BaseException | None]:
    """Each document's outcome in a batch the database partly refused. On a second attempt a
    duplicate `_id` is the first attempt's own insert (see the module docstring)."""
    failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
    outcomes: list[BaseException | None] = []
    for index in range(n):
        error = failed.get(index)
        if error is None or (retried and error.get("code") == DUPLICATE_KEY):
            outcomes.append(None)
        elif error.get("code") == DUPLICATE_KEY:
            outcomes.append(DuplicateKeyError(error.get("errmsg", "duplicate key")))
        else:
            outcomes.append(BulkWriteError({"writeErrors": [error]}))
    return outcomes
