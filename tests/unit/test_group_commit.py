"""Group commit (oidc_common.group_commit): batching, per-item outcomes, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from oidc_common.group_commit import GroupCommit


class Recorder:
    """A flush that records its batches and holds each until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def flush(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await self.release.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_items_queued_during_a_flush_go_out_together_in_the_next() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.flush, max_batch=3)
    first = asyncio.create_task(commit.submit(0))
    await asyncio.sleep(0)
    later = [asyncio.create_task(commit.submit(i)) for i in range(2, 10, 2)]
    await asyncio.sleep(0)
    assert recorder.batches == [[0]] and len(commit) == 4
    recorder.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [20, 40, 60, 80]
    assert recorder.batches == [[0], [2, 4, 6], [8]]  # max_batch bounds a batch


async def test_each_item_gets_its_own_outcome() -> None:
    recorder = Recorder()
    recorder.release.set()
    commit: GroupCommit[int, int] = GroupCommit(recorder.flush)
    results = await asyncio.gather(*(commit.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], ValueError) and str(results[1]) == "odd 1"
    assert isinstance(results[3], ValueError) and str(results[3]) == "odd 3"


async def test_a_failed_flush_fails_its_batch_and_may_shed_the_queue() -> None:
    gate = asyncio.Event()

    async def unreachable(items: list[int]) -> Sequence[int]:
        await gate.wait()
        raise ConnectionError("no server")

    commit: GroupCommit[int, int] = GroupCommit(
        unreachable, sheds_queue=lambda exc: isinstance(exc, ConnectionError)
    )
    tasks = [asyncio.create_task(commit.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    # Shed: the two queued behind the failed flush failed with it, no second flush ran.
    assert len(commit) == 0 and await commit.drain(0.1)


async def test_drain_waits_for_the_batch_in_flight() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.flush)
    task = asyncio.create_task(commit.submit(4))
    await asyncio.sleep(0)
    assert not await commit.drain(0.05)
    recorder.release.set()
    assert await commit.drain(1.0)
    assert await task == 40


@pytest.mark.parametrize("max_batch", [1, 2])
async def test_every_item_is_flushed_once(max_batch: int) -> None:
    recorder = Recorder()
    recorder.release.set()
    commit: GroupCommit[int, int] = GroupCommit(recorder.flush, max_batch=max_batch)
    await asyncio.gather(*(commit.submit(i) for i in range(0, 10, 2)))
    assert sorted(i for batch in recorder.batches for i in batch) == [0, 2, 4, 6, 8]
    assert all(len(batch) <= max_batch for batch in recorder.batches)


async def test_an_item_whose_request_was_cancelled_is_not_flushed() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.flush)
    first = asyncio.create_task(commit.submit(0))
    await asyncio.sleep(0)
    dropped = asyncio.create_task(commit.submit(2))
    kept = asyncio.create_task(commit.submit(4))
    await asyncio.sleep(0)
    dropped.cancel()
    recorder.release.set()
    assert await first == 0 and await kept == 40
    assert recorder.batches == [[0], [4]]  # no token spent, no place held for nobody


async def test_a_flush_of_the_wrong_length_fails_its_batch() -> None:
    async def short(items: list[int]) -> Sequence[int]:
        return items[:-1]

    commit: GroupCommit[int, int] = GroupCommit(short)
    with pytest.raises(RuntimeError, match="outcomes for"):
        await commit.submit(1)


@pytest.mark.parametrize("fails", [False, True])
async def test_a_batch_s_callers_resume_before_the_next_flush_starts(fails: bool) -> None:
    """The answered (or failed) requests take their next step first; the next flush then
    carries what queued meanwhile."""
    events: list[str] = []

    async def flush(items: list[int]) -> Sequence[int]:
        events.append(f"flush {items}")
        await asyncio.sleep(0)
        if fails and items == [1]:
            raise ConnectionError("lost")
        return items

    commit: GroupCommit[int, int] = GroupCommit(flush)

    async def caller(item: int) -> None:
        with contextlib.suppress(ConnectionError):
            await commit.submit(item)
        events.append(f"resumed {item}")

    first = asyncio.create_task(caller(1))
    await asyncio.sleep(0)  # the first flush is in flight
    later = [asyncio.create_task(caller(i)) for i in (2, 3)]
    await asyncio.gather(first, *later)
    assert events == ["flush [1]", "resumed 1", "flush [2, 3]", "resumed 2", "resumed 3"]


def _flushers() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "GroupCommit._flush_all"
    ]


async def test_cancelled_between_flushes_the_queue_is_cancelled_not_left_waiting() -> None:
    """Shutdown cancels the flusher; cancelled while it lets answered requests run, it
    leaves no queued request waiting for a flush that will not come."""
    commit: GroupCommit[int, int] = GroupCommit(_echo)

    async def first_caller() -> None:
        await commit.submit(1)
        # Runs while the flusher yields between flushes.
        [flusher] = _flushers()
        flusher.cancel()

    first = asyncio.create_task(first_caller())
    await asyncio.sleep(0)
    queued = [asyncio.create_task(commit.submit(i)) for i in (2, 3)]
    await first
    results = await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 1.0)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert len(commit) == 0 and await commit.drain(0.1)


async def test_a_flusher_cancelled_before_it_ran_leaves_nobody_waiting() -> None:
    """Cancelled before its first step (shutdown), the flusher never ran its clean-up: its
    queued request is cancelled, and a later submit starts a new flusher."""
    commit: GroupCommit[int, int] = GroupCommit(_echo)
    queued = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)  # submit queued its item and created the flusher, not yet run
    [flusher] = _flushers()
    flusher.cancel()
    [result] = await asyncio.wait_for(asyncio.gather(queued, return_exceptions=True), 1.0)
    assert isinstance(result, asyncio.CancelledError)
    assert await asyncio.wait_for(commit.submit(2), 1.0) == 2


async def _echo(items: list[int]) -> Sequence[int]:
    await asyncio.sleep(0)
    return items
