"""The classifier: one model per process, loaded once from the artifact, run in inference mode.

Labels, tokenizer and max length come from the model artifact only (``model_artifact``);
nothing is downloaded. On GPU the model runs in bf16 (fp16 where bf16 is not supported).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model_artifact import load_artifact

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from app.settings import Settings

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Classifier:
    """Tokenizes texts (truncating at the artifact's max length) and scores padded batches."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        labels: Sequence[str],
        max_length: int,
        device: torch.device,
        threads: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.max_length = max_length
        self.device = device
        self.threads = threads
        pad_id = tokenizer.pad_token_id
        self._pad_id = int(pad_id) if pad_id is not None else 0
        # Tensor cores want multiples of 8; on CPU padding would only cost compute.
        self._pad_multiple = 8 if device.type == "cuda" else 1
        # What one call costs beyond its tokens, in tokens (set by load_classifier).
        self.call_overhead_tokens = 0.0

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
        """Per-label probabilities of each sequence, padded to the longest in the batch."""
        # OpenMP thread counts are per calling thread: set them where the model runs.
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self._predict(batch)

    def _predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
        longest = max(len(ids) for ids in batch)
        longest = -(-longest // self._pad_multiple) * self._pad_multiple
        input_ids = torch.full((len(batch), longest), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        logits = self.model(
            input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
        ).logits  # (batch, labels)
        probabilities: list[list[float]] = logits.float().softmax(dim=-1).cpu().tolist()
        return probabilities

    def warm_up(self, batch_size: int) -> None:
        """Run the shapes serving will see once, so the first request pays no start-up cost."""
        ids = self._warm_up_ids()
        for size in sorted({1, min(batch_size, 8), batch_size}):
            self.predict([ids] * size)

    def measure_call_overhead(self, batch_size: int) -> float:
        """Fit time = overhead + per_token x tokens through a 1-text and a larger call
        (median of 3 each); the overhead in tokens is what the batcher weighs against padding.
        On a GPU it comes out large (small batches are nearly free), on a CPU a few dozen."""
        ids = self._warm_up_ids()
        size = max(2, min(batch_size, 16))

        def seconds(batch: list[Sequence[int]]) -> float:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                self.predict(batch)
                times.append(time.perf_counter() - started)
            return sorted(times)[1]

        one, many = seconds([ids]), seconds([ids] * size)
        per_token = (many - one) / (len(ids) * (size - 1))
        if per_token <= 0:  # timer noise on an idle accelerator: batches are free
            return 1e6
        return min(1e6, max(0.0, one / per_token - len(ids)))

    def _warm_up_ids(self) -> list[int]:
        return self.tokenize(["warm up the model before the first request"])[0]


def batch_size(settings: Settings) -> int:
    """``SERVE_MAX_BATCH_SIZE``, or 64 when it is 0. The batcher cuts what is queued into the
    cheapest batches under this cap (padding against the cost of a call), so the cap only
    bounds memory and the window of texts sorted together; a small cap on CPU narrows that
    window (one run each at concurrency 32: a cap of 16 gave 92, 64 gave 115 texts/s)."""
    if settings.max_batch_size:
        return settings.max_batch_size
    return 64


def resolve_device(settings: Settings) -> tuple[torch.device, torch.dtype]:
    if settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    if settings.dtype != "auto":
        return device, _DTYPES[settings.dtype]
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def load_classifier(settings: Settings) -> Classifier:
    """Load the artifact in ``settings.model_dir``, move it to its device and warm it up."""
    started = time.monotonic()
    device, dtype = resolve_device(settings)
    threads = None
    if device.type == "cpu":
        # By default one core is left to the event loop (HTTP, tokenizing): on a small box a
        # model thread fighting the loop for a core stalls both.
        threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // settings.workers - 1)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # progress bars would break the JSON logs
    model, tokenizer, info = load_artifact(Path(settings.model_dir))
    model = model.to(device=device, dtype=dtype).eval()
    classifier = Classifier(model, tokenizer, info.labels, info.max_length, device, threads)
    classifier.warm_up(batch_size(settings))
    classifier.call_overhead_tokens = (
        classifier.measure_call_overhead(batch_size(settings))
        if settings.call_overhead_tokens is None
        else settings.call_overhead_tokens
    )
    logger.info(
        "model loaded",
        extra={
            "base_model": info.base_model,
            "labels": list(info.labels),
            "max_length": info.max_length,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "threads": threads,
            "call_overhead_tokens": round(classifier.call_overhead_tokens, 1),
            "load_seconds": round(time.monotonic() - started, 3),
        },
    )
    return classifier
