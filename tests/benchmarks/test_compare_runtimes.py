"""The runtime comparison's arithmetic: changed labels, macro-F1 loss and the server's guard."""

from __future__ import annotations

import numpy as np

from benchmarks.compare_runtimes import compare
from model_artifact.variants import Threshold
from training.metrics import classification_report

LABELS = ["business", "entertainment", "health", "science_and_technology"]


def one_hot(indices: list[int]) -> np.ndarray:
    scores = np.full((len(indices), len(LABELS)), 0.1)
    scores[np.arange(len(indices)), indices] = 0.7
    return scores


def test_a_variant_that_changes_too_many_labels_fails_the_guard() -> None:
    truth_ids = [i % 4 for i in range(200)]
    truth = [LABELS[i] for i in truth_ids]
    fp32 = one_hot(truth_ids)
    close = truth_ids.copy()
    close[0] = 1  # 1 of 200 labels changed: 0.5%
    far = truth_ids.copy()
    for i in range(0, 40, 4):
        far[i] = 1  # 10 of 200: 5%
    runs = {
        "torch-fp32": fp32,
        "onnx-fp32": fp32,
        "onnx-optimized": one_hot(close),
        "onnx-int8": one_hot(far),
    }

    report = compare(truth, LABELS, runs, Threshold(max_macro_f1_loss_points=10.0))

    assert report["onnx-fp32"]["vs_torch_fp32"]["labels_that_differ"] == 0
    assert "vs_onnx_fp32" not in report["onnx-fp32"]
    optimized, int8 = report["onnx-optimized"], report["onnx-int8"]
    assert optimized["vs_onnx_fp32"]["changed_labels"] == 0.005
    assert optimized["vs_onnx_fp32"]["guard_passes"] is True
    assert int8["vs_onnx_fp32"]["changed_labels"] == 0.05
    assert int8["vs_onnx_fp32"]["guard_passes"] is False  # over 2% changed
    expected = classification_report(truth, [LABELS[i] for i in far], LABELS)
    assert int8["macro_f1"] == round(expected["macro_f1"], 6)
    assert int8["vs_onnx_fp32"]["macro_f1_loss_points"] == round(
        (1.0 - expected["macro_f1"]) * 100, 4
    )
    assert int8["per_class_f1"]["business"] == round(expected["per_class"]["business"]["f1"], 6)
