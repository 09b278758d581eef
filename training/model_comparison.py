"""Two classifiers on the same story-grouped test split: both macro-F1 figures and a
story-level bootstrap interval for their difference.

Rows of one story are near-paraphrases, so the interval resamples whole test stories (a
row-level bootstrap would claim far more certainty than the data holds). The pipeline's
evaluation step (:mod:`training.evaluate_candidate`) and ``benchmarks/compare_models.py`` both
use this module, so the gate and the published benchmark compute the same numbers.
"""

from __future__ import annotations

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


def accuracy(confusion: np.ndarray) -> np.ndarray:
    """Accuracy of confusion matrices ``(..., true, predicted)``."""
    total = confusion.sum(axis=(-2, -1))
    correct = np.diagonal(confusion, axis1=-2, axis2=-1).sum(axis=-1)
    result: np.ndarray = np.divide(correct, total, out=np.zeros(np.shape(total)), where=total > 0)
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
    """``model`` against ``baseline`` (any second classifier): point figures, the 95% story
    bootstrap interval of the macro-F1 difference, and the model's bootstrap spread."""
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
    resampled = {name: np.einsum("rs,sij->rij", weights, c) for name, c in per_model.items()}
    scores = {name: macro_f1(c) for name, c in resampled.items()}
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
        "model_macro_f1_std": round(float(scores["model"].std()), 4),
        "model_accuracy": round(float(accuracy(per_model["model"].sum(axis=0))), 4),
        "model_accuracy_std": round(float(accuracy(resampled["model"]).std()), 4),
        "model_errors": sum(p != t for p, t in zip(model, truth, strict=True)),
        "baseline_errors": sum(p != t for p, t in zip(baseline, truth, strict=True)),
        "resamples": resamples,
    }
