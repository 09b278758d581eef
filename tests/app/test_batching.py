"""The batcher on its own, driven by a hand-written backend that records the batches it got."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.batching import Batcher, cut_sorted
from app.errors import DeadlineExceededError, NotReadyError, OverloadedError


class RecordingBackend:
    """Scores a sequence by its first token id; remembers every batch; can be held shut."""

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
        self.gate.wait(timeout=10)
        self.batches.append([list(ids) for ids in batch])
        return [[float(ids[0]), float(len(ids))] for ids in batch]


def make_batcher(backend: RecordingBackend, **overrides: float) -> Batcher:
    options: dict[str, Any] = {
        "max_batch_size": 4,
        "max_batch_tokens": 1000,
        "max_wait_s": 0.0,
        "capacity": 64,
    }
    options.update(overrides)
    return Batcher(backend, **options)


def sequences(lengths: Sequence[int], start: int = 0) -> list[list[int]]:
    return [[start + i] * length for i, length in enumerate(lengths)]


def deadline(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def test_results_come_back_in_input_order_across_sorted_batches() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        batcher = make_batcher(backend)
        batcher.start()
        lengths = [9, 1, 7, 3, 8, 2, 6, 4, 5, 10, 1]
        job = await batcher.run(sequences(lengths), deadline())
        assert job.future.result() == [[float(i), float(n)] for i, n in enumerate(lengths)]
        assert all(len(batch) <= 4 for batch in backend.batches)
        # Length-sorted: each batch's sequences are no longer than the next batch's.
        flat = [len(ids) for batch in backend.batches for ids in batch]
        assert flat == sorted(flat)
        await batcher.stop()

    asyncio.run(scenario())


def test_token_budget_limits_padded_batch_size() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        batcher = make_batcher(backend, max_batch_size=100, max_batch_tokens=30)
        batcher.start()
        await batcher.run(sequences([10] * 7), deadline())
        assert sorted(len(batch) for batch in backend.batches) == [1, 3, 3]
        await batcher.stop()

    asyncio.run(scenario())


def test_concurrent_requests_share_batches() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        batcher = make_batcher(backend, max_batch_size=8, max_wait_s=0.05)
        batcher.start()
        jobs = await asyncio.gather(
            *(batcher.run(sequences([3], start=i), deadline()) for i in range(8))
        )
        assert [job.future.result() for job in jobs] == [[[float(i), 3.0]] for i in range(8)]
        assert [len(batch) for batch in backend.batches] == [8]
        await batcher.stop()

    asyncio.run(scenario())


def test_a_lone_client_does_not_wait_for_company() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        batcher = make_batcher(backend, max_wait_s=0.5)
        batcher.start()
        for i in range(3):
            started = time.monotonic()
            await batcher.run(sequences([3], start=i), deadline())
            assert time.monotonic() - started < 0.25
            await asyncio.sleep(0.6)
        await batcher.stop()

    asyncio.run(scenario())


def test_full_queue_is_refused_at_once_and_cancelled_texts_are_skipped() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        backend.gate.clear()
        batcher = make_batcher(backend, max_batch_size=1, capacity=4)
        batcher.start()
        first = asyncio.create_task(batcher.run(sequences([2], start=100), deadline()))
        await asyncio.sleep(0.05)  # the consumer took it: the model is now busy with it
        waiting = asyncio.create_task(batcher.run(sequences([2] * 4, start=200), deadline()))
        await asyncio.sleep(0.01)
        # One text is already handed to the model thread, next after the running batch.
        assert batcher.depth == 3
        with pytest.raises(OverloadedError):
            batcher.submit(sequences([2, 2]), deadline())
        waiting.cancel()  # the client went away
        await asyncio.sleep(0.01)
        assert batcher.depth == 0
        backend.gate.set()
        await first
        later = await batcher.run(sequences([2], start=300), deadline())
        assert later.future.result() == [[300.0, 2.0]]
        ran = {ids[0] for batch in backend.batches for ids in batch}
        assert ran == {100, 300}
        await batcher.stop()

    asyncio.run(scenario())


def test_deadline_passing_in_the_queue_is_answered() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        backend.gate.clear()
        batcher = make_batcher(backend, max_batch_size=1)
        batcher.start()
        blocker = asyncio.create_task(batcher.run(sequences([2]), deadline()))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await batcher.run(sequences([2], start=7), deadline(0.1))
        assert time.monotonic() - started < 1.0
        backend.gate.set()
        await blocker
        await batcher.stop()
        assert all(ids[0] != 7 for batch in backend.batches for ids in batch)

    asyncio.run(scenario())


@pytest.mark.parametrize("model_threads", [1, 2])
def test_stop_drains_the_queue_then_refuses(model_threads: int) -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        backend.gate.clear()
        batcher = make_batcher(backend, max_batch_size=2, model_threads=model_threads)
        batcher.start()
        jobs = [
            asyncio.create_task(batcher.run(sequences([1, 2, 3], start=10 * i), deadline()))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.01)
        with pytest.raises(NotReadyError):
            batcher.submit(sequences([1]), deadline())
        backend.gate.set()
        await stopping
        assert [len((await job).future.result()) for job in jobs] == [3, 3, 3]

    asyncio.run(scenario())


class ConcurrentBackend(RecordingBackend):
    """Records how many batches run at once; each batch takes a little while, the shorter
    sequences longer, so batches launched later can finish first."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.02 / len(batch[0]))
            return super().predict(batch)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_two_model_threads_run_batches_side_by_side_and_keep_input_order() -> None:
    async def scenario() -> None:
        backend = ConcurrentBackend()
        batcher = make_batcher(backend, max_batch_size=2, model_threads=2)
        batcher.start()
        requests = [[9, 1, 7, 3, 8, 2, 6, 4, 5, 10, 1], [1, 1, 5], [4], [2, 8, 2, 8]]
        jobs = await asyncio.gather(
            *(
                batcher.run(sequences(lengths, start=100 * r), deadline())
                for r, lengths in enumerate(requests)
            )
        )
        for r, (job, lengths) in enumerate(zip(jobs, requests, strict=True)):
            expected = [[float(100 * r + i), float(n)] for i, n in enumerate(lengths)]
            assert job.future.result() == expected
        assert backend.most_in_flight == 2
        assert all(len(batch) <= 2 for batch in backend.batches)
        await batcher.stop()

    asyncio.run(scenario())


def test_with_one_model_thread_batches_run_one_at_a_time() -> None:
    async def scenario() -> None:
        backend = ConcurrentBackend()
        batcher = make_batcher(backend, max_batch_size=2)
        batcher.start()
        await asyncio.gather(
            *(batcher.run(sequences([3, 3], start=i), deadline()) for i in range(4))
        )
        assert backend.most_in_flight == 1
        await batcher.stop()

    asyncio.run(scenario())


def test_full_queue_is_refused_with_two_model_threads_busy() -> None:
    async def scenario() -> None:
        backend = RecordingBackend()
        backend.gate.clear()
        batcher = make_batcher(backend, max_batch_size=1, capacity=4, model_threads=2)
        batcher.start()
        # Two batches run (one per thread) and a third waits behind them: none is queued.
        running = [
            asyncio.create_task(batcher.run(sequences([2], start=100 + i), deadline()))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        assert batcher.depth == 0
        waiting = asyncio.create_task(batcher.run(sequences([2] * 4, start=200), deadline()))
        await asyncio.sleep(0.01)
        assert batcher.depth == 4
        with pytest.raises(OverloadedError):
            batcher.submit(sequences([2]), deadline())
        waiting.cancel()  # the client went away: its texts never run
        await asyncio.sleep(0.01)
        assert batcher.depth == 0
        backend.gate.set()
        assert [(await task).future.result() for task in running] == [
            [[100.0 + i, 2.0]] for i in range(3)
        ]
        later = await batcher.run(sequences([2], start=300), deadline())
        assert later.future.result() == [[300.0, 2.0]]
        ran = {ids[0] for batch in backend.batches for ids in batch}
        assert ran == {100, 101, 102, 300}
        await batcher.stop()

    asyncio.run(scenario())


def test_model_threads_can_run_at_a_lower_priority() -> None:
    priorities: list[int] = []

    class PriorityBackend(RecordingBackend):
        def predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
            priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().predict(batch)

    async def scenario() -> None:
        batcher = make_batcher(PriorityBackend(), model_threads=2, model_thread_nice=5)
        batcher.start()
        jobs = (batcher.run(sequences([3] * 4, start=i), deadline()) for i in range(3))
        await asyncio.gather(*jobs)
        await batcher.stop()

    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base > 5:
        pytest.skip("the tests already run above nice 5")
    asyncio.run(scenario())
    assert priorities and set(priorities) == {5}
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the event loop's thread keeps its own


def test_a_batcher_needs_a_model_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        make_batcher(RecordingBackend(), model_threads=0)


def test_cuts_weigh_padding_against_the_cost_of_a_call() -> None:
    lengths = [5] * 8 + [30] * 8
    limits = {"max_batch_size": 16, "max_batch_tokens": 10_000}
    # A call costs 20 tokens: two calls (40 + 8x5 + 8x30 = 320) beat one padded (20 + 16x30).
    assert cut_sorted(lengths, call_overhead_tokens=20, **limits) == [(0, 8), (8, 16)]
    # A call costs 1000 (a GPU): one batch (1480) beats two (2280).
    assert cut_sorted(lengths, call_overhead_tokens=1000, **limits) == [(0, 16)]
    # The limits still hold whatever the overhead: the fewest batches of at most 5.
    capped = cut_sorted(
        lengths, call_overhead_tokens=1e6, max_batch_size=5, max_batch_tokens=10_000
    )
    assert len(capped) == 4 and all(end - start <= 5 for start, end in capped)


def _cost(lengths: list[int], cuts: list[tuple[int, int]], overhead: float) -> float:
    return sum(overhead + (end - start) * lengths[end - 1] for start, end in cuts)


@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=9).map(sorted),
    overhead=st.sampled_from([0.0, 3.0, 30.0, 1e6]),
    max_batch_size=st.integers(1, 9),
)
def test_cuts_are_the_cheapest_valid_ones(
    lengths: list[int], overhead: float, max_batch_size: int
) -> None:
    budget = 60
    cuts = cut_sorted(
        lengths,
        max_batch_size=max_batch_size,
        max_batch_tokens=budget,
        call_overhead_tokens=overhead,
    )
    assert cuts[0][0] == 0 and cuts[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))

    def valid(start: int, end: int) -> bool:
        size = end - start
        return size == 1 or (size <= max_batch_size and size * lengths[end - 1] <= budget)

    assert all(valid(start, end) for start, end in cuts)
    # Against every way of cutting the list (2^(n-1) of them).
    best = float("inf")
    for mask in range(2 ** (len(lengths) - 1)):
        bounds = [0] + [i + 1 for i in range(len(lengths) - 1) if mask >> i & 1] + [len(lengths)]
        candidate = list(itertools.pairwise(bounds))
        if all(valid(start, end) for start, end in candidate):
            best = min(best, _cost(lengths, candidate, overhead))
    assert _cost(lengths, cuts, overhead) == pytest.approx(best)
