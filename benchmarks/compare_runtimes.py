"""Accuracy of every way the server can run an artifact, on one test split: PyTorch fp32 and
each ONNX file the artifact holds (fp32 ``model.onnx``, ``optimized``, ``int8``), through the
server's own runtimes (``app.model.load_classifier``, the same length-sorted batches).

    .venv/bin/python benchmarks/compare_runtimes.py --input ../shared/data/newsCorpora.csv.xz \
        --model /tmp/run/model --out /tmp/runtimes.json

Per runtime: macro-F1, accuracy, per-class F1, seconds; per ONNX file, against PyTorch fp32
label by label and score by score; per variant, against fp32 ONNX (what the training job's
check compares) the share of changed labels and the macro-F1 loss, and whether that passes
the server's accuracy guard (``SERVE_ONNX_MAX_F1_LOSS``, ``SERVE_ONNX_MAX_CHANGED_LABELS``,
defaults 0.3 points and 2%). Also: the checks the artifact records (on at most 2,000 test
texts) and the variant ``SERVE_ONNX_VARIANT=auto`` serves from them. A markdown table closes
the output. The artifact needs ``model.onnx`` (``python -m model_artifact.onnx DIR`` adds it,
and the variants with it).
"""

from __future__ import annotations

import random
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


def quality(
    truth: Sequence[str], labels: Sequence[str], probabilities: np.ndarray
) -> dict[str, Any]:
    """Macro-F1, accuracy and per-class F1 of the top labels."""
    from training.metrics import classification_report

    report = classification_report(truth, [labels[i] for i in probabilities.argmax(axis=1)], labels)
    return {
        "macro_f1": round(report["macro_f1"], 6),
        "accuracy": round(report["accuracy"], 6),
        "per_class_f1": {
            label: round(float(report["per_class"][label]["f1"]), 6) for label in labels
        },
    }


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """How far ``other``'s labels and scores stray from ``reference``'s."""
    differ = np.flatnonzero(reference.argmax(axis=1) != other.argmax(axis=1))
    difference = np.abs(reference - other)
    return {
        "labels_that_differ": int(differ.size),
        "changed_labels": round(differ.size / max(len(reference), 1), 6),
        "largest_score_difference": float(difference.max()),
        "mean_score_difference": float(difference.mean()),
        # The texts whose labels differ, and how close the reference's top two scores were.
        "differing_top_two_margins": [
            round(float(np.diff(np.sort(reference[i])[-2:])[0]), 6) for i in differ[:20]
        ],
    }


def guard_check(fp32: dict[str, Any], variant: dict[str, Any], changed: float) -> dict[str, Any]:
    """The variant against fp32 ONNX in the shape of the training job's recorded check."""
    return {
        "changed_labels": changed,
        "macro_f1_loss_points": round((fp32["macro_f1"] - variant["macro_f1"]) * 100, 4),
    }


def compare(
    truth: Sequence[str], labels: Sequence[str], runs: dict[str, np.ndarray], threshold: Any
) -> dict[str, Any]:
    """Quality of each run (``torch-fp32`` first, then ``onnx-<variant>``), each ONNX run
    against PyTorch, each ONNX variant against ``onnx-fp32`` and the guard."""
    report: dict[str, Any] = {}
    torch_scores = runs["torch-fp32"]
    for name, probabilities in runs.items():
        report[name] = quality(truth, labels, probabilities)
        if name != "torch-fp32":
            report[name]["vs_torch_fp32"] = agreement(torch_scores, probabilities)
    fp32 = runs.get("onnx-fp32")
    for name, probabilities in runs.items():
        if fp32 is None or name in ("torch-fp32", "onnx-fp32"):
            continue
        changed = agreement(fp32, probabilities)["changed_labels"]
        check = guard_check(report["onnx-fp32"], report[name], changed)
        report[name]["vs_onnx_fp32"] = check | {"guard_passes": threshold.passes(check)}
    return report


def markdown(report: dict[str, Any], labels: Sequence[str]) -> str:
    short = [label.split("_")[0] for label in labels]
    lines = [
        "| runtime | macro-F1 | accuracy | labels changed vs PyTorch fp32 | vs fp32 ONNX: "
        "changed / macro-F1 loss (points) | guard | " + " | ".join(short) + " | seconds |",
        "| --- |" + " ---: |" * 3 + " --- | --- |" + " ---: |" * (len(labels) + 1),
    ]
    for name, run in report["runtimes"].items():
        vs_torch = run.get("vs_torch_fp32", {})
        changed = f"{vs_torch['changed_labels']:.2%}" if vs_torch else "(reference)"
        guard = run.get("vs_onnx_fp32")
        against_fp32 = (
            f"{guard['changed_labels']:.2%} / {guard['macro_f1_loss_points']:+.2f}" if guard else ""
        )
        verdict = ("passes" if guard["guard_passes"] else "fails") if guard else ""
        f1s = " | ".join(f"{run['per_class_f1'][label]:.4f}" for label in labels)
        lines.append(
            f"| {name} | {run['macro_f1']:.4f} | {run['accuracy']:.4f} | {changed} "
            f"| {against_fp32} | {verdict} | {f1s} | {run['seconds']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = comparison_parser(
        __doc__.split("\n\n")[0], model_help="artifact dir named 'model'", batch_size=64
    )
    parser.add_argument(
        "--max-texts", type=int, default=0, help="a seeded sample of the test split; 0: all"
    )
    args = parser.parse_args(argv)

    from app.model import variant_threshold
    from app.settings import Settings
    from model_artifact import ONNX_VARIANT_FILES, read_info
    from model_artifact.variants import METADATA_KEY, pick_variant
    from training.data import load_input

    info = read_info(args.model)
    settings = Settings(base_dir=args.model.parent)
    threshold = variant_threshold(settings)
    splits, _ = load_input(args.input, seed=args.seed)
    test = list(splits.test)
    if 0 < args.max_texts < len(test):
        test = random.Random(args.seed).sample(test, args.max_texts)
    texts, truth = [e.text for e in test], [e.label for e in test]

    runs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    plan = [("torch-fp32", "torch", "auto")] + [
        (f"onnx-{variant}", "onnx", variant)
        for variant, file in ONNX_VARIANT_FILES.items()
        if (args.model / file).is_file()
    ]
    for name, runtime, variant in plan:
        started = time.perf_counter()
        runs[name] = scores(args.model, runtime, texts, args.batch_size, variant)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
    runtimes = compare(truth, info.labels, runs, threshold)
    for name, run in runtimes.items():
        run["seconds"] = seconds[name]
    report = {
        "model": str(args.model),
        "texts": len(texts),
        "guard": threshold.__dict__,
        "auto_serves": pick_variant(args.model, info, threshold),
        "recorded_checks": {
            name: record.get("check")
            for name, record in info.metadata.get(METADATA_KEY, {}).items()
        },
        "runtimes": runtimes,
    }
    write_report(report, args.out)
    sys.stdout.write("\n" + markdown(report, info.labels) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
