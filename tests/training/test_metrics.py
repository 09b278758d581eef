"""classification_report against hand-computed figures and scikit-learn; the confusion plot."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from training.metrics import classification_report, plot_confusion_matrix

LABELS = ["business", "entertainment", "health", "science_and_technology"]


def test_hand_computed_example() -> None:
    y_true = ["business", "business", "health", "health", "health", "entertainment"]
    y_pred = ["business", "health", "health", "health", "business", "entertainment"]
    report = classification_report(y_true, y_pred, LABELS)

    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    business = report["per_class"]["business"]
    assert (business["precision"], business["recall"], business["support"]) == (0.5, 0.5, 2)
    health = report["per_class"]["health"]
    assert health["precision"] == pytest.approx(2 / 3)
    assert health["recall"] == pytest.approx(2 / 3)
    # Never predicted and never present: zeros, not NaN, so the report stays valid JSON.
    assert report["per_class"]["science_and_technology"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert report["macro_f1"] == pytest.approx((0.5 + 1.0 + 2 / 3 + 0.0) / 4)
    json.dumps(report, allow_nan=False)


def test_matches_scikit_learn_on_random_predictions() -> None:
    rng = random.Random(3)
    y_true = [rng.choice(LABELS) for _ in range(2000)]
    y_pred = [label if rng.random() < 0.7 else rng.choice(LABELS) for label in y_true]
    report = classification_report(y_true, y_pred, LABELS)

    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=LABELS).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=LABELS)
    for i, label in enumerate(LABELS):
        figures = report["per_class"][label]
        assert figures["precision"] == pytest.approx(precision[i])
        assert figures["recall"] == pytest.approx(recall[i])
        assert figures["f1"] == pytest.approx(f1[i])
        assert figures["support"] == support[i]


def test_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="items"):
        classification_report(["health"], [], LABELS)
    with pytest.raises(ValueError, match="sports"):
        classification_report(["health"], ["sports"], LABELS)


def test_confusion_plot_is_a_png(tmp_path: Path) -> None:
    report = classification_report(LABELS * 3, LABELS[1:] + LABELS[:1] + LABELS * 2, LABELS)
    path = tmp_path / "plots" / "confusion.png"
    plot_confusion_matrix(report, path, title="test split")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
