"""Predictions over a split (sharded across ranks) and the test report next to the baseline's."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.batching import EncodedSplit, collate
from training.distributed import DistContext, all_gather
from training.precision import Precision

if TYPE_CHECKING:
    import torch

    from training.data import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """One predicted class id and its probability per row, in the split's order."""

    label_ids: list[int]
    scores: list[float]
    loss: float


def predict(
    model: torch.nn.Module,
    split: EncodedSplit,
    *,
    batch_size: int,
    pad_token_id: int,
    precision: Precision,
    ctx: DistContext,
) -> Predictions:
    """Run the model over ``split``; every rank takes every world_size-th batch, all get all."""
    import torch
    from torch.nn import functional

    # Sorting by length makes eval batches nearly padding-free; the order is undone below.
    order = sorted(range(len(split)), key=lambda i: len(split.input_ids[i]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    rows: list[tuple[int, int, float]] = []
    loss_sum = 0.0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for indices in batches[ctx.rank :: ctx.world_size]:
            batch = {k: v.to(ctx.device) for k, v in collate(split, indices, pad_token_id).items()}
            with precision.autocast():
                logits = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits  # (B, C)
            logits = logits.float()
            loss_sum += functional.cross_entropy(logits, batch["labels"], reduction="sum").item()
            scores, label_ids = logits.softmax(dim=-1).max(dim=-1)  # (B,), (B,)
            rows.extend(zip(indices, label_ids.tolist(), scores.tolist(), strict=True))
    model.train(was_training)
    gathered = all_gather((rows, loss_sum), ctx)
    by_index = {index: (label, score) for part, _ in gathered for index, label, score in part}
    total_loss = sum(part_loss for _, part_loss in gathered)
    return Predictions(
        label_ids=[by_index[i][0] for i in range(len(split))],
        scores=[by_index[i][1] for i in range(len(split))],
        loss=total_loss / max(len(split), 1),
    )


def misclassified(
    examples: Sequence[Example],
    predictions: Predictions,
    labels: Sequence[str],
    limit: int,
) -> list[dict[str, Any]]:
    """The most confident mistakes first: the ones worth reading."""
    wrong = [
        {
            "text": example.text,
            "label": example.label,
            "predicted": labels[label_id],
            "score": round(score, 4),
            "story": example.story,
        }
        for example, label_id, score in zip(
            examples, predictions.label_ids, predictions.scores, strict=True
        )
        if labels[label_id] != example.label
    ]
    wrong.sort(key=lambda row: -score_of(row))
    return wrong[:limit]


def score_of(row: dict[str, Any]) -> float:
    return float(row["score"])


def write_test_report(
    out_dir: Path,
    *,
    examples: Sequence[Example],
    predictions: Predictions,
    labels: Sequence[str],
    baseline: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
    misclassified_limit: int,
) -> dict[str, Any]:
    """evaluation.json, confusion_matrix.{json,png}, misclassified.jsonl; returns the summary."""
    from training.metrics import classification_report, plot_confusion_matrix

    out_dir.mkdir(parents=True, exist_ok=True)
    y_true = [example.label for example in examples]
    y_pred = [labels[label_id] for label_id in predictions.label_ids]
    report = classification_report(y_true, y_pred, labels)
    (out_dir / "confusion_matrix.json").write_text(
        json.dumps(
            {"labels": list(labels), "confusion_matrix": report["confusion_matrix"]}, indent=2
        ),
        encoding="utf-8",
    )
    plot_confusion_matrix(
        report,
        out_dir / "confusion_matrix.png",
        title=f"Fine-tuned model, test split (macro-F1 {report['macro_f1']:.3f})",
    )
    mistakes = misclassified(examples, predictions, labels, misclassified_limit)
    with (out_dir / "misclassified.jsonl").open("w", encoding="utf-8") as handle:
        for row in mistakes:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary: dict[str, Any] = {
        "test": {**report, "loss": predictions.loss, "rows": len(examples)},
        "validation": dict(validation) if validation else None,
        "baseline": dict(baseline) if baseline else None,
    }
    if baseline:
        summary["comparison"] = {
            "test_macro_f1": {
                "model": report["macro_f1"],
                "baseline": baseline["test"]["macro_f1"],
                "difference": report["macro_f1"] - baseline["test"]["macro_f1"],
            },
            "test_accuracy": {
                "model": report["accuracy"],
                "baseline": baseline["test"]["accuracy"],
                "difference": report["accuracy"] - baseline["test"]["accuracy"],
            },
        }
    (out_dir / "evaluation.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
