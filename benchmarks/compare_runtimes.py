"""The accuracy change of the ONNX Runtime CPU path: an artifact's test split through the
server's runtimes (``app.model.load_classifier`` with ``runtime`` torch, and onnx with each
ONNX variant the artifact holds: fp32, optimized, int8; the same batches), each compared with
PyTorch fp32 label by label and score by score, with its macro-F1 and per-class F1.

    .venv/bin/python benchmarks/compare_runtimes.py --input ../shared/data/newsCorpora.csv.xz \
        --model /tmp/run200/model --out /tmp/runtimes.json

The artifact needs ``model.onnx`` (``python -m model_artifact.onnx DIR`` adds it, and the
variants with it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from compare_models import comparison_parser, write_report


def scores(
    model_dir: Path, runtime: str, texts: Sequence[str], batch_size: int, variant: str = "auto"
) -> np.ndarray:
    """Probabilities (texts x labels) in the texts' order, from length-sorted batches."""
    from app.model import load_classifier
    from app.scoring import scores as probabilities
    from app.settings import Settings

    settings = Settings(
        base_dir=model_dir.parent,
        runtime=runtime,  # type: ignore[arg-type]
        onnx_variant=variant,  # type: ignore[arg-type]
        device="cpu",
        call_overhead_tokens=0,
    )
    if settings.model_dir != model_dir:
        raise SystemExit(f"--model must be a directory named 'model' (got {model_dir})")
    classifier = load_classifier(settings)
    ids = classifier.tokenize(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    result = np.zeros((len(ids), len(classifier.labels)))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        result[chunk] = probabilities(classifier.predict([ids[i] for i in chunk]), "softmax")
    return result


def agreement(
    truth: Sequence[str], labels: Sequence[str], torch_scores: np.ndarray, onnx_scores: np.ndarray
) -> dict[str, Any]:
    from training.metrics import classification_report

    torch_labels, onnx_labels = torch_scores.argmax(axis=1), onnx_scores.argmax(axis=1)
    differ = np.flatnonzero(torch_labels != onnx_labels)
    difference = np.abs(torch_scores - onnx_scores)
    reports = {
        name: classification_report(truth, [labels[i] for i in predicted], labels)
        for name, predicted in (("torch", torch_labels), ("onnx", onnx_labels))
    }
    return {
        "texts": len(truth),
        "labels_that_differ": int(differ.size),
        "largest_score_difference": float(difference.max()),
        "mean_score_difference": float(difference.mean()),
        # The texts whose labels differ, and how close their top two scores were.
        "differing_top_two_margins": [
            round(float(np.diff(np.sort(torch_scores[i])[-2:])[0]), 6) for i in differ[:20]
        ],
        "torch_macro_f1": round(reports["torch"]["macro_f1"], 6),
        "onnx_macro_f1": round(reports["onnx"]["macro_f1"], 6),
        "torch_accuracy": round(reports["torch"]["accuracy"], 6),
        "onnx_accuracy": round(reports["onnx"]["accuracy"], 6),
        "onnx_per_class_f1": {
            label: round(float(reports["onnx"]["per_class"][label]["f1"]), 6) for label in labels
        },
        "torch_per_class_f1": {
            label: round(float(reports["torch"]["per_class"][label]["f1"]), 6) for label in labels
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = comparison_parser(
        __doc__.split("\n\n")[0], model_help="artifact dir named 'model'", batch_size=64
    )
    args = parser.parse_args(argv)

    from model_artifact import ONNX_VARIANT_FILES, read_info
    from training.data import load_input

    labels = read_info(args.model).labels
    splits, _ = load_input(args.input, seed=args.seed)
    texts = [e.text for e in splits.test]
    truth = [e.label for e in splits.test]
    started = time.perf_counter()
    torch_scores = scores(args.model, "torch", texts, args.batch_size)
    report: dict[str, Any] = {"torch_predict_s": round(time.perf_counter() - started, 1)}
    for variant, file in ONNX_VARIANT_FILES.items():
        if not (args.model / file).is_file():
            continue
        started = time.perf_counter()
        variant_scores = scores(args.model, "onnx", texts, args.batch_size, variant)
        seconds = round(time.perf_counter() - started, 1)
        report[variant] = agreement(truth, labels, torch_scores, variant_scores) | {
            "predict_s": seconds
        }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
