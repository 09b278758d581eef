"""A fine-tuned artifact against the TF-IDF baseline on the same story-grouped test split:
both figures, and a story-level bootstrap interval for the difference in macro-F1.

Rows of one story are near-paraphrases, so the interval resamples whole test stories (a
row-level bootstrap would claim far more certainty than the data holds).

    .venv/bin/python benchmarks/compare_models.py --input ../shared/data/newsCorpora.csv.xz \
        --model /tmp/full_run/model --out /tmp/compare.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def predict_artifact(model_dir: Path, texts: Sequence[str], batch_size: int) -> list[str]:
    """Labels from the artifact, predicted as the training job predicts its test split (fp32,
    on the CPU, length-sorted batches, in the texts' order)."""
    import torch

    from model_artifact import load_artifact
    from training.batching import encode
    from training.distributed import DistContext
    from training.evaluate import predict
    from training.precision import Precision

    model, tokenizer, info = load_artifact(model_dir)
    # The labels only feed a loss that is not reported here.
    split = encode(texts, [0] * len(texts), tokenizer, info.max_length)
    cpu = torch.device("cpu")
    predictions = predict(
        model,
        split,
        batch_size=batch_size,
        pad_token_id=int(tokenizer.pad_token_id or 0),
        precision=Precision("fp32", cpu.type),
        ctx=DistContext(rank=0, local_rank=0, world_size=1, device=cpu),
    )
    return [info.labels[label_id] for label_id in predictions.label_ids]


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices ``(..., true, predicted)``; a class with no support and
    no prediction scores 0, as ``training.metrics`` does."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    denominator = confusion.sum(axis=-1) + confusion.sum(axis=-2)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    result: np.ndarray = f1.mean(axis=-1)
    return result


def story_confusions(
    stories: Sequence[str], truth: Sequence[int], predicted: Sequence[int], classes: int
) -> np.ndarray:
    """One confusion matrix per story: ``(stories, classes, classes)``."""
    index = {story: i for i, story in enumerate(dict.fromkeys(stories))}
    confusion = np.zeros((len(index), classes, classes))
    np.add.at(confusion, ([index[s] for s in stories], truth, predicted), 1)
    return confusion


def compare(
    stories: Sequence[str],
    truth: Sequence[str],
    model: Sequence[str],
    baseline: Sequence[str],
    labels: Sequence[str],
    *,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    code = {label: i for i, label in enumerate(labels)}
    y = [code[label] for label in truth]
    per_model = {
        name: story_confusions(stories, y, [code[label] for label in predicted], len(labels))
        for name, predicted in (("model", model), ("baseline", baseline))
    }
    rng = np.random.default_rng(seed)
    count = len(per_model["model"])
    # Each resample draws `count` stories with replacement: weights = how often each is drawn.
    weights = np.stack(
        [np.bincount(rng.integers(0, count, count), minlength=count) for _ in range(resamples)]
    ).astype(float)
    scores = {name: macro_f1(np.einsum("rs,sij->rij", weights, c)) for name, c in per_model.items()}
    difference = scores["model"] - scores["baseline"]
    full = {name: float(macro_f1(c.sum(axis=0))) for name, c in per_model.items()}
    low, high = np.percentile(difference, [2.5, 97.5])
    return {
        "test_rows": len(truth),
        "test_stories": count,
        "model_macro_f1": round(full["model"], 4),
        "baseline_macro_f1": round(full["baseline"], 4),
        "difference": round(full["model"] - full["baseline"], 4),
        "difference_95ci_story_bootstrap": [round(float(low), 4), round(float(high), 4)],
        "share_of_resamples_model_ahead": round(float((difference > 0).mean()), 4),
        "model_errors": sum(p != t for p, t in zip(model, truth, strict=True)),
        "baseline_errors": sum(p != t for p, t in zip(baseline, truth, strict=True)),
        "resamples": resamples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="raw UCI file or prepared dir")
    parser.add_argument("--model", type=Path, required=True, help="a model artifact directory")
    parser.add_argument("--seed", type=int, default=42, help="the split seed the job used")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)

    from training.baseline import build_baseline
    from training.data import load_input

    splits, _ = load_input(args.input, seed=args.seed)
    test = splits.test
    texts = [e.text for e in test]
    started = time.perf_counter()
    baseline = build_baseline(args.seed).fit(
        [e.text for e in splits.train], [e.label for e in splits.train]
    )
    baseline_predicted = [str(label) for label in baseline.predict(texts)]
    baseline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model_predicted = predict_artifact(args.model, texts, args.batch_size)
    model_seconds = time.perf_counter() - started
    report = compare(
        [e.story for e in test],
        [e.label for e in test],
        model_predicted,
        baseline_predicted,
        list(splits.labels),
        resamples=args.resamples,
        seed=args.seed,
    )
    report |= {
        "baseline_fit_and_predict_s": round(baseline_seconds, 1),
        "model_predict_s": round(model_seconds, 1),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
