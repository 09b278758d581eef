"""The dynamic batcher: a bounded queue of tokenized texts and one consumer that feeds the model.

Requests are split into one queue item per text, so a large request spreads over several
batches and a small one joins whatever runs next; results go back into each request's slots,
so they are reassembled in input order whatever the batches looked like.

The consumer takes up to ``window`` live items (the oldest first), sorts them by length and
cuts them into the batches of least total cost (:func:`cut_sorted`: padded tokens plus a fixed
cost per model call), within a count (``max_batch_size``) and a padded-token budget
(``max_batch_tokens``), so texts of similar length share a batch and little compute goes to
padding without paying for many tiny model calls. It waits up to
``max_wait`` after the oldest item arrived for a batch to fill, which only matters when the
model is idle (under load the queue fills while the model runs), and is skipped when requests
arrive further apart than ``max_wait`` (one client at a time). The model runs on
``model_threads`` dedicated threads, off the event loop, so ``/ping`` and new requests are
answered meanwhile; with more than one, batches run side by side (a runtime that releases the
GIL for a whole call, like ONNX Runtime, then keeps every core busy). While every model thread
runs a batch, the next one is already handed over (as soon as it is full, or when a running
one ends), so the model goes from batch to batch without waiting for the event loop to
deliver results and form the next batch; an idle model thread takes what is queued at once.
Results are delivered as each batch ends, in whatever order they end.

Items whose request was cancelled (the client went away) are dropped unrun; items whose
deadline passed fail their request with :class:`DeadlineExceededError`. When the queue is full,
:meth:`Batcher.reserve` raises :class:`OverloadedError` at once instead of queueing without
bound; callers reserve room before they spend anything on a request (tokenizing), so a 429
costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from app.errors import DeadlineExceededError, NotReadyError, OverloadedError

logger = logging.getLogger(__name__)

TokenIds = Sequence[int]
Scores = list[float]


class Backend(Protocol):
    """What the batcher drives: a blocking call from token ids to per-label logits."""

    def predict(self, batch: Sequence[TokenIds]) -> list[Scores]: ...


@dataclass(frozen=True)
class BatchStats:
    """What one batch looked like, for metrics."""

    size: int
    padded_tokens: int
    model_seconds: float
    queue_waits: list[float]


@dataclass(eq=False)
class Job:
    """One request in the queue: its texts' results fill in as their batches finish."""

    deadline: float
    results: list[Scores | None]
    remaining: int
    future: asyncio.Future[list[Scores]]
    enqueued_at: float = field(default_factory=time.monotonic)
    queue_wait: float = 0.0
    model_seconds: float = 0.0
    last_batch: float = 0.0
    queued: int = 0  # texts still in the queue, counted against its capacity
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.cancelled or self.future.done()


@dataclass(eq=False)
class Reservation:
    """Queue room held for one request's texts (see :meth:`Batcher.reserve`)."""

    count: int
    spent: bool = False


@dataclass(eq=False, slots=True)
class _Item:
    job: Job
    index: int
    ids: TokenIds


class Batcher:
    """Bounded queue plus the one consumer task; start with :meth:`start`, end with :meth:`stop`."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch_size: int,
        max_batch_tokens: int,
        max_wait_s: float,
        capacity: int,
        call_overhead_tokens: float = 0.0,
        retry_after_s: int = 1,
        on_batch: Callable[[BatchStats], None] | None = None,
        model_threads: int = 1,
        model_thread_nice: int = 0,
    ) -> None:
        if model_threads < 1:
            raise ValueError("the model needs at least one thread")
        self._backend = backend
        self._model_threads = model_threads
        self._max_batch_size = max_batch_size
        self._max_batch_tokens = max_batch_tokens
        self._max_wait_s = max_wait_s
        self._capacity = capacity
        self._call_overhead_tokens = call_overhead_tokens
        self._retry_after_s = retry_after_s
        self._window = 4 * max_batch_size
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._queued = 0  # texts of live requests in the queue (cancelled ones leave at once)
        self._reserved = 0  # texts with room held for them, not queued yet (being tokenized)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Smoothed time between requests; waiting for company is pointless when it is longer
        # than max_wait (one client at a time: every wait would be pure added latency).
        self._gap_cap = 10 * max_wait_s
        self._arrival_gap = self._gap_cap
        self._last_arrival = time.monotonic()
        self._executor = ThreadPoolExecutor(
            max_workers=model_threads,
            thread_name_prefix="model",
            initializer=_lower_priority,
            initargs=(model_thread_nice,),
        )

    @property
    def depth(self) -> int:
        """Texts waiting in the queue (not yet running); not those still being tokenized."""
        return self._queued

    @property
    def full(self) -> bool:
        """No room for even one more text: a request can be refused before it is read."""
        return self._queued + self._reserved >= self._capacity

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume(), name="batcher")

    async def stop(self) -> None:
        """Refuse new work, run what is queued, then stop the consumer."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def reserve(self, count: int) -> Reservation:
        """Hold queue room for ``count`` texts before any work is spent on them (parsing
        further, tokenizing); raise at once when the server is stopping or full.

        The room is the request's until :meth:`run` queues its texts or :meth:`release`
        gives it back; whoever reserves must do one of the two.
        """
        if self._stopping:
            raise NotReadyError("the server is shutting down")
        if self._queued + self._reserved + count > self._capacity:
            raise OverloadedError(
                f"the queue is full ({self._queued + self._reserved} of {self._capacity} texts "
                "waiting); retry later",
                retry_after_s=self._retry_after_s,
            )
        self._reserved += count
        return Reservation(count)

    def release(self, reservation: Reservation) -> None:
        """Give back room that was reserved and never queued; a no-op once it was queued."""
        if not reservation.spent:
            reservation.spent = True
            self._reserved -= reservation.count

    def submit(
        self, texts: Sequence[TokenIds], deadline: float, reservation: Reservation | None = None
    ) -> Job:
        """Queue a request's texts in the room reserved for them (reserved now when none is
        given); raise at once when the server is stopping or full."""
        if reservation is None:
            reservation = self.reserve(len(texts))
        if reservation.spent or reservation.count != len(texts):
            raise ValueError("a reservation holds room for one request's texts, once")
        if self._stopping:
            self.release(reservation)
            raise NotReadyError("the server is shutting down")
        self._reserved -= reservation.count  # its room now belongs to the job's queued texts
        self._queued += reservation.count
        reservation.spent = True
        job = Job(
            deadline=deadline,
            results=[None] * len(texts),
            remaining=len(texts),
            future=asyncio.get_running_loop().create_future(),
            queued=len(texts),
        )
        gap = min(job.enqueued_at - self._last_arrival, self._gap_cap)
        self._last_arrival = job.enqueued_at
        self._arrival_gap += 0.5 * (gap - self._arrival_gap)
        self._queue.extend(_Item(job, index, ids) for index, ids in enumerate(texts))
        self._wakeup.set()
        return job

    async def run(
        self, texts: Sequence[TokenIds], deadline: float, reservation: Reservation | None = None
    ) -> Job:
        """Queue the texts and wait for all their results (in input order) in ``job.future``.

        Cancelling the caller (the client went away) drops the texts that have not run yet.
        """
        job = self.submit(texts, deadline, reservation)
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await asyncio.shield(job.future)
        except TimeoutError:
            self._cancel(job)
            raise DeadlineExceededError(
                "the request's deadline passed before its texts were classified"
            ) from None
        except asyncio.CancelledError:
            self._cancel(job)
            raise
        return job

    def _cancel(self, job: Job) -> None:
        """Its texts stay in the deque until the consumer passes them, but free capacity now."""
        job.cancelled = True
        self._queued -= job.queued
        job.queued = 0

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        running: list[_Launched] = []  # handed to the model threads, oldest first
        ready: deque[list[_Item]] = deque()  # cut from the queue, not handed over yet
        # One batch waits behind the running ones, so a model thread goes straight on to it
        # instead of idling while the event loop delivers results and forms the next.
        depth = self._model_threads + 1
        while True:
            while ready and len(running) < depth:
                running.append(self._launch(loop, ready.popleft()))
            finished = next((launched for launched in running if launched.future.done()), None)
            if finished is not None:
                running.remove(finished)
                await self._finish(finished)
                continue
            if len(running) == depth or not self._queue:
                if not self._queue and not running and self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()  # a new request, stop(), or a running batch ends
                continue
            if running:
                if len(running) < self._model_threads:
                    # A model thread is idle: what is queued runs now, with no wait for company.
                    ready.extend(self._take(self._window))
                    continue
                # Every model thread is busy: hand over a full batch now; a partial one may
                # still fill before a thread is free, so it waits for either.
                if self._queued < self._max_batch_size and not self._stopping:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                ready.extend(self._take(self._max_batch_size))  # just the next batch
            else:
                await self._gather()
                ready.extend(self._take(self._window))

    async def _gather(self) -> None:
        """Wait until a batch is full or the oldest text has waited ``max_wait``, unless
        requests arrive too rarely for the wait to gather any."""
        if self._arrival_gap > self._max_wait_s:
            return
        while self._queued < self._max_batch_size and not self._stopping:
            remaining = self._queue[0].job.enqueued_at + self._max_wait_s - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return

    def _take(self, limit: int) -> list[list[_Item]]:
        """Pop up to ``limit`` live items and cut them into length-sorted batches."""
        now = time.monotonic()
        live: list[_Item] = []
        while self._queue and len(live) < limit:
            item = self._queue.popleft()
            job = item.job
            if job.queued > 0:
                job.queued -= 1
                self._queued -= 1
            if job.done:
                continue
            if now > job.deadline:
                job.future.set_exception(
                    DeadlineExceededError("the request's deadline passed while it was queued")
                )
                continue
            live.append(item)
        live.sort(key=lambda item: len(item.ids))
        cuts = cut_sorted(
            [len(item.ids) for item in live],
            max_batch_size=self._max_batch_size,
            max_batch_tokens=self._max_batch_tokens,
            call_overhead_tokens=self._call_overhead_tokens,
        )
        return [live[start:end] for start, end in cuts]

    def _launch(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> _Launched:
        """Hand a batch to a model thread (which drops the items whose request ended)."""
        future = loop.run_in_executor(self._executor, _run_on_model_thread, self._backend, batch)
        future.add_done_callback(lambda _: self._wakeup.set())
        return _Launched(batch, future)

    async def _finish(self, launched: _Launched) -> None:
        """Wait for a launched batch and put its scores into their requests' slots."""
        try:
            batch, scores, started, elapsed = await launched.future
        except Exception as exc:
            # Logged with its traceback here; callers see a generic 500.
            logger.exception("model call failed", extra={"batch_size": len(launched.batch)})
            for item in launched.batch:
                if not item.job.done:
                    item.job.future.set_exception(exc)
            return
        if not batch:
            return
        waits = []
        for item, row in zip(batch, scores, strict=True):
            job = item.job
            wait = started - job.enqueued_at
            waits.append(wait)
            if job.done:
                continue
            job.queue_wait = max(job.queue_wait, wait)
            if job.last_batch != started:
                job.last_batch = started
                job.model_seconds += elapsed
            job.results[item.index] = row
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result([r for r in job.results if r is not None])
        if self._on_batch is not None:
            padded = len(batch) * max(len(item.ids) for item in batch)
            self._on_batch(BatchStats(len(batch), padded, elapsed, waits))


@dataclass(eq=False, slots=True)
class _Launched:
    batch: list[_Item]
    future: asyncio.Future[tuple[list[_Item], list[Scores], float, float]]


def _run_on_model_thread(
    backend: Backend, batch: list[_Item]
) -> tuple[list[_Item], list[Scores], float, float]:
    """The items that ran, their scores, when the model started on them and how long it took.

    A launched batch may wait behind the running one, so requests that ended meanwhile (client
    gone, deadline passed) are dropped here, and the clock starts here. ``job.done`` is read
    across threads (a flag and a future's state, each set once): a request that ends just as
    its batch starts is computed for nothing, never answered twice.
    """
    started = time.monotonic()
    live = [item for item in batch if not item.job.done]
    if not live:
        return live, [], started, 0.0
    scores = backend.predict([item.ids for item in live])
    return live, scores, started, time.monotonic() - started


def _lower_priority(nice: int) -> None:
    """Give the calling (model) thread a nice value, so the event loop runs first."""
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            logger.warning("could not set the model threads' nice value to %d", nice)


def cut_sorted(
    lengths: Sequence[int],
    *,
    max_batch_size: int,
    max_batch_tokens: int,
    call_overhead_tokens: float,
) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` into consecutive batches of least total cost: ``(start, end)``.

    A batch costs its padded tokens (size x longest) plus ``call_overhead_tokens``, what one
    model call costs beyond its tokens, in tokens. One big batch wastes compute on padding
    (headlines run from 5 to 40 tokens); many small ones pay the call overhead each time. With
    an overhead of 0 every length gets its own batch; with a large one (GPUs) batches are as
    large as the limits allow. Dynamic programming over the cut points, O(n x max_batch_size).
    """
    count = len(lengths)
    best = [0.0] + [float("inf")] * count  # best[j]: least cost of the first j items
    start_of = [0] * (count + 1)
    for end in range(1, count + 1):
        longest = lengths[end - 1]
        size_limit = min(max_batch_size, max(1, max_batch_tokens // max(longest, 1)))
        for start in range(max(0, end - size_limit), end):
            cost = best[start] + call_overhead_tokens + (end - start) * longest
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    cuts = []
    end = count
    while end > 0:
        cuts.append((start_of[end], end))
        end = start_of[end]
    return cuts[::-1]


def _loop_time(deadline: float) -> float:
    """Convert a ``time.monotonic`` deadline to the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())
