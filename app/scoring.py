"""From a text's logits to its ranked labels, as the transformers text-classification pipeline
does it: the score function the request names, then the ``top_k`` best, best first.

The model returns logits; which function turns them into scores is the request's choice
(``function_to_apply``), so it is applied here, after the batcher, per request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.schemas import ScoreFunction

# One element per input: (label, score) pairs, best first.
Ranked = list[tuple[str, float]]


def scores(logits: Sequence[Sequence[float]], function: ScoreFunction) -> np.ndarray:
    """``function`` applied to each row of ``logits`` (texts x labels), in float64."""
    values = np.asarray(logits, dtype=np.float64)  # (texts, labels)
    if function == "softmax":
        exp = np.exp(values - values.max(axis=-1, keepdims=True))
        result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
        return result
    if function == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-(-800)) is inf, and 1 / inf the right 0
            sigmoid: np.ndarray = 1.0 / (1.0 + np.exp(-values))
        return sigmoid
    return values


def rank(
    logits: Sequence[Sequence[float]],
    labels: Sequence[str],
    top_k: int | None,
    function: ScoreFunction = "softmax",
) -> list[Ranked]:
    """The ``top_k`` best labels of each text (every label when None), best first; equal
    scores keep the labels' order, as the pipeline's stable sort does."""
    if not logits:
        return []
    keep = len(labels) if top_k is None else min(top_k, len(labels))
    ranked = []
    for row in scores(logits, function).tolist():
        order = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:keep]
        ranked.append([(labels[i], row[i]) for i in order])
    return ranked
