"""The inference façade: the one call the HTTP layer makes, ``classify(texts, deadline, top_k)``.

It follows TEI's ``Infer::predict``: the handler negotiates, decodes and checks limits, then
hands the texts here, where every step is bounded before it is paid for:

1. queue room is reserved first, so a full server answers 429 before it tokenizes anything;
2. each text is cut to ``max_text_chars`` characters (truncated, never refused), so a 1 MB
   text costs what a 4 KB one does: tokenizing and truncating to max_length gives the same ids;
3. texts are tokenized on one dedicated thread, off the event loop, in chunks that stop when
   the deadline passes;
4. the batcher runs them (:mod:`app.batching`) under the same deadline;
5. the logits become scores (the request's ``function_to_apply``) ranked into ``top_k``
   (label, score) pairs, best first (:mod:`app.scoring`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.batching import Batcher, TokenIds
from app.errors import DeadlineExceededError, OverloadedError
from app.model import Classifier
from app.schemas import ScoreFunction
from app.scoring import Ranked, rank
from app.settings import Settings

# Tokenizing fewer characters than this stays on the event loop (a thread hop costs more).
_INLINE_TOKENIZE_CHARS = 4096
# Texts tokenized per call on the tokenizer thread; the deadline is checked between calls.
_TOKENIZE_CHUNK = 256
# The default cap is this many characters per token of max_length: natural text averages
# 4-6 characters per WordPiece/BPE token, so the cap never cuts what the model would see.
CHARS_PER_TOKEN = 32

# Share of the request deadline a full queue of max-length texts may take to run; the rest is
# margin for tokenizing, the event loop and a busier moment of the machine.
DEADLINE_SHARE = 0.5
QUEUE_BOUNDS = (64, 4096)
MAX_INSTANCES_CAP = 2048
# A long body's chunks in flight at once: one running while the next is tokenized.
_CHUNKS_IN_FLIGHT = 2
# How often a long body's next chunk looks for queue room that others hold.
_ROOM_POLL_S = 0.01


@dataclass(frozen=True)
class Limits:
    """The queue size and texts per request in force: set, or derived from ``texts_per_s``
    (measured at start-up on texts of max_length tokens) and the deadline."""

    queue_size: int
    max_instances: int
    texts_per_s: float | None = None


def derive_limits(settings: Settings, classifier: Classifier) -> Limits:
    """``SERVE_QUEUE_SIZE`` and ``SERVE_MAX_INSTANCES``, or where 0 (the default) what this
    model on this machine runs within the deadline: a full queue in ``DEADLINE_SHARE`` of
    ``SERVE_REQUEST_TIMEOUT_S``, a request at the limit in half of that."""
    if settings.queue_size and settings.max_instances:
        return Limits(settings.queue_size, settings.max_instances)
    texts_per_s = classifier.measure_throughput(settings.max_batch_size)
    low, high = QUEUE_BOUNDS
    budget = int(texts_per_s * settings.request_timeout_s * DEADLINE_SHARE)
    queue_size = settings.queue_size or min(high, max(low, budget))
    max_instances = settings.max_instances or max(1, min(MAX_INSTANCES_CAP, queue_size // 2))
    # A request at the limit must fit in the queue, or it could never run.
    return Limits(max(queue_size, max_instances), max_instances, texts_per_s)


@dataclass(frozen=True)
class Classification:
    """One request's answer: ranked (label, score) pairs per text, in input order, and the
    sizes and timings its log line reports."""

    ranked: list[Ranked]
    tokens: int
    truncated: int
    queue_wait_s: float
    model_s: float


class Inference:
    """Owns the tokenizer thread; built by the engine once the model is loaded."""

    def __init__(
        self, classifier: Classifier, batcher: Batcher, limits: Limits, max_text_chars: int = 0
    ) -> None:
        self._classifier = classifier
        self._batcher = batcher
        self.limits = limits  # the handler answers 413 above limits.max_instances
        self.max_text_chars = max_text_chars or CHARS_PER_TOKEN * classifier.max_length
        self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize")

    @property
    def labels(self) -> tuple[str, ...]:
        return self._classifier.labels

    def check_room(self) -> None:
        """429 before the body is even read when the queue has no room for one more text."""
        if self._batcher.full:
            self._batcher.reserve(1)  # raises the same OverloadedError a request would get

    async def classify(
        self,
        texts: Sequence[str],
        deadline: float,
        top_k: int | None,
        function: ScoreFunction = "softmax",
    ) -> Classification:
        """Classify ``texts`` before ``deadline`` (``time.monotonic``); ``top_k`` None: all
        labels; ``function`` turns the logits into scores. Raises 429 (full), 503 (stopping) or
        504 (deadline) as ``ServingError``."""
        reservation = self._batcher.reserve(len(texts))
        try:
            cap = self.max_text_chars
            capped = [text[:cap] for text in texts]
            truncated = sum(len(text) > cap for text in texts)
            token_ids = await self._tokenize(capped, deadline)
            job = await self._batcher.run(token_ids, deadline, reservation)
        finally:
            self._batcher.release(reservation)  # a no-op once its texts were queued
        return Classification(
            ranked=rank(job.future.result(), self.labels, top_k, function),
            tokens=sum(len(ids) for ids in token_ids),
            truncated=truncated,
            queue_wait_s=job.queue_wait,
            model_s=job.model_seconds,
        )

    def chunk_size(self, concurrent_requests: int = 1) -> int:
        """Texts per chunk of a long body: at most ``max_instances``, and small enough that
        ``concurrent_requests`` such bodies, each with its chunks in flight, fit the queue."""
        share = self.limits.queue_size // (_CHUNKS_IN_FLIGHT * max(1, concurrent_requests))
        return max(1, min(self.limits.max_instances, share))

    async def classify_in_chunks(
        self,
        texts: Sequence[str],
        deadline: float,
        top_k: int | None,
        function: ScoreFunction = "softmax",
        concurrent_requests: int = 1,
    ) -> Classification:
        """:meth:`classify` for any number of texts (a Batch Transform or async body): in
        chunks of :meth:`chunk_size`, two in flight, all under the one deadline, answered in
        input order. A chunk that finds the queue full waits for room until the deadline
        (the body was accepted: refusing it halfway would waste what already ran)."""
        size = self.chunk_size(concurrent_requests)
        if len(texts) <= size:
            return await self.classify(texts, deadline, top_k, function)
        pending: list[asyncio.Task[Classification]] = []
        done: list[Classification] = []
        try:
            for start in range(0, len(texts), size):
                chunk = texts[start : start + size]
                pending.append(
                    asyncio.ensure_future(
                        self._classify_when_room(chunk, deadline, top_k, function)
                    )
                )
                if len(pending) >= _CHUNKS_IN_FLIGHT:
                    done.append(await pending.pop(0))
            for task in pending:
                done.append(await task)
        finally:
            for task in pending:
                task.cancel()
        return Classification(
            ranked=[pairs for part in done for pairs in part.ranked],
            tokens=sum(part.tokens for part in done),
            truncated=sum(part.truncated for part in done),
            queue_wait_s=sum(part.queue_wait_s for part in done),
            model_s=sum(part.model_s for part in done),
        )

    async def _classify_when_room(
        self, texts: Sequence[str], deadline: float, top_k: int | None, function: ScoreFunction
    ) -> Classification:
        while True:
            try:
                return await self.classify(texts, deadline, top_k, function)
            except OverloadedError:
                if time.monotonic() + _ROOM_POLL_S > deadline:
                    raise DeadlineExceededError(
                        "the request's deadline passed while it waited for queue room"
                    ) from None
                await asyncio.sleep(_ROOM_POLL_S)

    async def _tokenize(self, texts: list[str], deadline: float) -> Sequence[TokenIds]:
        if sum(len(text) for text in texts) <= _INLINE_TOKENIZE_CHARS:
            return self._classifier.tokenize(texts)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._tokenizer_thread, self._tokenize_until, texts, deadline)
        ids: list[TokenIds] | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                ids = await work
        except TimeoutError:
            pass
        if ids is None:
            raise DeadlineExceededError("the request's deadline passed while it was tokenized")
        return ids

    def _tokenize_until(self, texts: list[str], deadline: float) -> list[TokenIds] | None:
        """On the tokenizer thread: None when the deadline passes (the rest is not worth it)."""
        ids: list[TokenIds] = []
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            if time.monotonic() > deadline:
                return None
            ids.extend(self._classifier.tokenize(texts[start : start + _TOKENIZE_CHUNK]))
        return ids

    def close(self) -> None:
        self._tokenizer_thread.shutdown(wait=False, cancel_futures=True)
