"""What the model could do without a server: the ceilings the serving benchmark compares with.

- ``model_only``: length-sorted batches straight through the model, no HTTP: the plain Hugging
  Face model in PyTorch, or one ONNX variant in ONNX Runtime set up as the server sets it up;
- ``window_ceiling``: the server's own ``Classifier`` on the windows of texts a server holds
  at a given concurrency, cut into batches as the batcher cuts them;
- ``compute_limit``: the model's FLOPs per headline over the machine's measured matmul rate.

Each runs on the calling thread with the given intra-op threads: a single model thread's
ceiling (the server may run several model threads at once, ``SERVE_MODEL_THREADS``).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def model_only(
    model_dir: Path,
    texts: Sequence[str],
    batch_sizes: Sequence[int],
    threads: int,
    runtime: str = "torch",
    variant: str = "fp32",
    parallel: int = 1,
) -> dict[str, Any]:
    """Length-sorted batches straight through the model: the plain Hugging Face model in
    PyTorch (the issue's ceiling), or ``runtime="onnx"``: the artifact's model.onnx (or the
    ``variant``'s file) in ONNX Runtime, set up as the server sets it up, called from
    ``parallel`` threads at once (as the server's model threads call it)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from app.model import OnnxScorer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if runtime == "onnx":
        from model_artifact import ONNX_VARIANT_FILES, read_info

        labels = len(read_info(model_dir).labels)
        scorer = OnnxScorer(model_dir / ONNX_VARIANT_FILES[variant], threads, labels)

        def model(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            return scorer.logits(input_ids.numpy(), attention_mask.numpy())
    else:
        if parallel != 1:
            raise ValueError("PyTorch runs one model thread in the server")
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    ids = tokenizer(list(texts), truncation=True, max_length=128)["input_ids"]
    ids.sort(key=len)

    def run_batch(batch: list[list[int]]) -> None:
        padded = tokenizer.pad({"input_ids": batch}, return_tensors="pt")
        model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"])

    results: dict[str, float] = {}
    for size in batch_sizes:
        batches = [ids[i : i + size] for i in range(0, len(ids), size)]
        # Batches in random order: the time cap must not keep only the shortest texts.
        random.Random(0).shuffle(batches)
        results[str(size)] = _texts_per_s(batches, run_batch, threads, parallel)
    return results


def _texts_per_s(
    batches: list[list[list[int]]],
    run_batch: Callable[[list[list[int]]], None],
    threads: int,
    parallel: int,
    cap_s: float = 8.0,
) -> float:
    """Texts per second through ``run_batch`` from ``parallel`` threads, for up to ``cap_s``."""
    import torch

    pending = iter(batches)
    lock = threading.Lock()
    done = 0
    started = time.perf_counter()

    def work() -> None:
        nonlocal done
        torch.set_num_threads(threads)  # per calling thread
        with torch.inference_mode():
            while time.perf_counter() - started < cap_s:
                with lock:
                    batch = next(pending, None)
                if batch is None:
                    return
                run_batch(batch)
                with lock:
                    done += len(batch)

    workers = [threading.Thread(target=work) for _ in range(parallel)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return round(done / (time.perf_counter() - started), 1)


def window_ceiling(
    base: Path,
    texts: Sequence[str],
    windows: Sequence[int],
    threads: int,
    runtime: str = "auto",
    variant: str = "auto",
) -> dict[str, Any]:
    """What the server's own model path could do if HTTP and queueing cost nothing: random
    windows of ``window`` texts (all a server sees at concurrency ``window`` with one text per
    request), each sorted and cut into batches as the batcher cuts them, through the same
    ``Classifier`` (same threads, same measured call overhead)."""
    from app.batching import cut_sorted
    from app.model import load_classifier
    from app.settings import Settings

    settings = Settings(
        base_dir=base,
        torch_threads=threads,
        runtime=runtime,  # type: ignore[arg-type]
        onnx_variant=variant,  # type: ignore[arg-type]
    )
    classifier = load_classifier(settings)
    ids = classifier.tokenize(list(texts))
    random.Random(0).shuffle(ids)
    results: dict[str, Any] = {
        "runtime": classifier.runtime,
        "variant": getattr(classifier.scorer, "variant", None),
        "call_overhead_tokens": round(classifier.call_overhead_tokens, 1),
    }
    for window in windows:
        done, padded, calls = 0, 0, 0
        started = time.perf_counter()
        for start in range(0, len(ids) - window + 1, window):
            batch = sorted(ids[start : start + window], key=len)
            for first, end in cut_sorted(
                [len(x) for x in batch],
                max_batch_size=settings.max_batch_size,
                max_batch_tokens=settings.max_batch_tokens,
                call_overhead_tokens=classifier.call_overhead_tokens,
            ):
                classifier.predict(batch[first:end])
                padded += (end - first) * len(batch[end - 1])
                calls += 1
            done += window
            if time.perf_counter() - started > 8:
                break
        results[str(window)] = {
            "texts_per_s": round(done / (time.perf_counter() - started), 1),
            "texts_per_call": round(done / calls, 1),
            "padded_tokens_per_text": round(padded / done, 1),
        }
    return results


def compute_limit(model_dir: Path, texts: Sequence[str]) -> dict[str, Any]:
    """FLOPs per text (matmuls of the encoder at the texts' mean token length) over the
    measured fp32 matmul rate of this machine."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True)["input_ids"]]
    s = statistics.mean(lengths)
    h, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * s * (4 * h * h + 2 * h * inner) + 2 * 2 * s * s * h
    flops = layers * per_layer + 2 * h * h + 2 * h * config.num_labels
    a = torch.randn(1024, h)
    b = torch.randn(h, inner)
    rates = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        for _ in range(5):
            a @ b
        started, runs = time.perf_counter(), 0
        while time.perf_counter() - started < 3:
            a @ b
            runs += 1
        rates[threads] = runs * 2 * 1024 * h * inner / (time.perf_counter() - started)
    rate = max(rates.values())  # on a shared machine, fewer threads can be faster
    return {
        "mean_tokens": round(s, 1),
        "gflop_per_text": round(flops / 1e9, 4),
        "matmul_gflops_by_threads": {t: round(r / 1e9, 1) for t, r in rates.items()},
        "texts_per_s": round(rate / flops, 1),
    }
