"""The inference façade on its own: the real tiny classifier, a real batcher, and every step
bounded before it is paid for (queue room first, the text cap, tokenizing under the deadline)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.batching import Batcher
from app.errors import DeadlineExceededError, OverloadedError
from app.inference import CHARS_PER_TOKEN, Inference, Limits, derive_limits
from app.model import Classifier, load_classifier
from app.scoring import rank
from tests.app.support import tiny_settings


class RecordingClassifier(Classifier):
    """The real tiny classifier that remembers what it was asked to tokenize, and can be
    made slow (a stand-in for a huge request on a busy CPU)."""

    def __init__(self, real: Classifier, tokenize_seconds: float = 0.0) -> None:
        super().__init__(real.scorer, real.tokenizer, real.labels, real.max_length)
        self.tokenized: list[str] = []
        self.tokenize_seconds = tokenize_seconds
        self.lock = threading.Lock()

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        with self.lock:
            self.tokenized.extend(texts)
        time.sleep(self.tokenize_seconds)
        return super().tokenize(texts)


@pytest.fixture(scope="module")
def real_classifier(tiny_model_dir: Path) -> Classifier:
    return load_classifier(tiny_settings(tiny_model_dir))


def batcher_for(classifier: Classifier, capacity: int = 64) -> Batcher:
    return Batcher(
        classifier, max_batch_size=8, max_batch_tokens=4096, max_wait_s=0.0, capacity=capacity
    )


def test_a_full_queue_answers_429_before_anything_is_tokenized(
    real_classifier: Classifier,
) -> None:
    classifier = RecordingClassifier(real_classifier)

    async def scenario() -> None:
        batcher = batcher_for(classifier, capacity=4)
        batcher.start()
        inference = Inference(classifier, batcher, Limits(64, 32))
        held = batcher.reserve(4)  # another request's room, taken while it tokenizes
        with pytest.raises(OverloadedError):
            inference.check_room()
        with pytest.raises(OverloadedError):
            await inference.classify(["Fed raises rates"] * 2, time.monotonic() + 10, 1)
        assert classifier.tokenized == []
        batcher.release(held)
        result = await inference.classify(["Fed raises rates"] * 2, time.monotonic() + 10, 1)
        assert len(result.ranked) == 2
        assert not batcher.full
        await batcher.stop()
        inference.close()

    asyncio.run(scenario())


def test_texts_are_cut_to_the_cap_before_tokenizing(real_classifier: Classifier) -> None:
    classifier = RecordingClassifier(real_classifier)

    async def scenario() -> None:
        batcher = batcher_for(classifier)
        batcher.start()
        inference = Inference(classifier, batcher, Limits(64, 32))
        cap = inference.max_text_chars
        assert cap == CHARS_PER_TOKEN * classifier.max_length
        long_text = "Stocks fall as oil prices climb. " * 30_000  # about 1 MB
        result = await inference.classify([long_text, "short"], time.monotonic() + 30, None)
        assert [len(text) for text in classifier.tokenized] == [cap, 5]
        assert result.truncated == 1
        # The cap never changes what the model sees: max_length tokens of the same text.
        assert (
            result.ranked[0]
            == (
                await inference.classify([long_text[: 10 * cap]], time.monotonic() + 30, None)
            ).ranked[0]
        )
        await batcher.stop()
        inference.close()

    asyncio.run(scenario())


def test_the_deadline_covers_tokenizing_and_frees_the_queue_room(
    real_classifier: Classifier,
) -> None:
    classifier = RecordingClassifier(real_classifier, tokenize_seconds=3.0)

    async def scenario() -> None:
        batcher = batcher_for(classifier)
        batcher.start()
        inference = Inference(classifier, batcher, Limits(64, 32))
        texts = ["Ebola outbreak spreads to Nigeria " * 20] * 10  # over the inline limit
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await inference.classify(texts, started + 0.2, 1)
        assert time.monotonic() - started < 2.5  # answered at the deadline, not after 3 s
        batcher.reserve(64)  # all the room is free again
        await batcher.stop()
        inference.close()

    asyncio.run(scenario())


def test_rank_keeps_top_k_best_first() -> None:
    rows = [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]
    labels = ("a", "b", "c")
    assert rank(rows, labels, 1, "none") == [[("b", 0.7)], [("a", 0.5)]]
    assert rank(rows, labels, None, "none") == [
        [("b", 0.7), ("c", 0.2), ("a", 0.1)],
        [("a", 0.5), ("c", 0.3), ("b", 0.2)],
    ]
    assert rank(rows, labels, 99, "none") == rank(rows, labels, None, "none")


class MeasuredClassifier(RecordingClassifier):
    """The real tiny classifier, as fast on max-length texts as a test says it is."""

    def __init__(self, real: Classifier, texts_per_s: float) -> None:
        super().__init__(real)
        self.texts_per_s = texts_per_s

    def measure_throughput(self, batch_size: int) -> float:
        return self.texts_per_s


@pytest.mark.parametrize(
    ("texts_per_s", "overrides", "expected"),
    [
        # A full queue runs in half the 50 s deadline; a request may take half the queue.
        (10.0, {}, (250, 125)),
        (0.5, {}, (64, 32)),  # never below 64 texts queued
        (1000.0, {}, (4096, 2048)),  # nor above 4096
        (10.0, {"max_instances": 400}, (400, 400)),  # a request at the limit must fit
        (10.0, {"queue_size": 100}, (100, 50)),
        (10.0, {"request_timeout_s": 10.0}, (64, 32)),
    ],
)
def test_default_limits_fit_the_measured_throughput_and_the_deadline(
    real_classifier: Classifier,
    tiny_model_dir: Path,
    texts_per_s: float,
    overrides: dict[str, float],
    expected: tuple[int, int],
) -> None:
    settings = tiny_settings(tiny_model_dir, **{"queue_size": 0, "max_instances": 0, **overrides})
    limits = derive_limits(settings, MeasuredClassifier(real_classifier, texts_per_s))
    assert (limits.queue_size, limits.max_instances) == expected


def test_limits_set_explicitly_are_kept_and_the_real_model_is_measured(
    real_classifier: Classifier, tiny_model_dir: Path
) -> None:
    settings = tiny_settings(tiny_model_dir, queue_size=10, max_instances=5)
    assert derive_limits(settings, real_classifier) == Limits(10, 5)
    derived = tiny_settings(tiny_model_dir, queue_size=0, max_instances=0)
    measured = derive_limits(derived, real_classifier)
    assert measured.texts_per_s is not None and measured.texts_per_s > 0
    assert 64 <= measured.queue_size <= 4096
