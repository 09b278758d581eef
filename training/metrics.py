"""Classification metrics and the confusion-matrix plot shared by the baseline and the trainer.

Computed here with the standard library rather than scikit-learn so that evaluating a model
does not import scikit-learn (a second or more of start-up) and the report has one fixed,
JSON-ready shape:

    {"accuracy": float, "macro_f1": float, "labels": [...],
     "per_class": {label: {"precision", "recall", "f1", "support"}},
     "confusion_matrix": [[int]]}   # rows = true label, columns = predicted, in ``labels`` order
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    A class that is never predicted (or never present) gets precision (or recall) 0 rather
    than NaN, as scikit-learn does with ``zero_division=0``, so the report stays valid JSON.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"labels repeat: {list(labels)}")
    unknown = sorted({*y_true, *y_pred} - index.keys())
    if unknown:
        raise ValueError(f"labels {unknown} are not among {list(labels)}")

    matrix = [[0] * len(labels) for _ in labels]
    for true, predicted in zip(y_true, y_pred, strict=True):
        matrix[index[true]][index[predicted]] += 1

    per_class: dict[str, dict[str, float | int]] = {}
    for i, label in enumerate(labels):
        true_positives = matrix[i][i]
        support = sum(matrix[i])
        predicted_count = sum(row[i] for row in matrix)
        precision = true_positives / predicted_count if predicted_count else 0.0
        recall = true_positives / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }

    total = len(y_true)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    return {
        "accuracy": correct / total if total else 0.0,
        "macro_f1": sum(float(c["f1"]) for c in per_class.values()) / len(labels)
        if labels
        else 0.0,
        "labels": list(labels),
        "per_class": per_class,
        "confusion_matrix": matrix,
    }


def plot_confusion_matrix(report: Mapping[str, Any], path: Path, *, title: str) -> None:
    """Save the report's confusion matrix as a PNG: row-normalized colours, raw counts.

    Colours are normalized per true label so that the small health class reads as clearly
    as the large ones; each cell prints its count and its share of the row.
    """
    from matplotlib.figure import Figure

    labels = [str(label) for label in report["labels"]]
    matrix = [[int(v) for v in row] for row in report["confusion_matrix"]]
    shares = [[v / (sum(row) or 1) for v in row] for row in matrix]

    size = 2.2 + 1.3 * len(labels)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true label's examples")
    short = [label.replace("_", " ") for label in labels]
    axes.set_xticks(range(len(labels)), short, rotation=30, ha="right")
    axes.set_yticks(range(len(labels)), short)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    accuracy = report.get("accuracy")
    macro_f1 = report.get("macro_f1")
    subtitle = (
        f"\naccuracy {accuracy:.3f} · macro-F1 {macro_f1:.3f}"
        if accuracy is not None and macro_f1 is not None
        else ""
    )
    axes.set_title(title + subtitle)
    for row, (counts, row_shares) in enumerate(zip(matrix, shares, strict=True)):
        for column, (count, share) in enumerate(zip(counts, row_shares, strict=True)):
            axes.text(
                column,
                row,
                f"{count:,}\n{share:.1%}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if share > 0.5 else "black",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
