"""``python -m training.evaluate_candidate``: the pipeline's evaluation step.

Scores a freshly trained candidate on the prepared test split next to the TF-IDF baseline
(fitted here on the same train split) and, when there is one, the currently approved model,
with the story-bootstrap interval of :mod:`training.model_comparison`. Writes one JSON file,
``evaluation.json``, that three readers share:

- Model Registry (``ModelMetrics.ModelQuality.Statistics``): the
  ``multiclass_classification_metrics`` block, each metric as ``{"value", "standard_deviation"}``
  in the format of SageMaker's model-quality statistics;
- the pipeline's condition step (``JsonGet`` on the ``gate`` block; see ``deploy.pipeline_gate``);
- people: both comparisons in full, the data hash, the candidate's provenance.

    python -m training.evaluate_candidate --prepared data/prepared --candidate model/ \
        [--approved approved/] --output evaluation/

``--candidate`` and ``--approved`` take a model artifact directory, a ``model.tar.gz`` or a
directory holding one (a training job's output); an ``--approved`` directory with neither
means "no approved model yet". Run in the training image (SageMaker Processing) or locally.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.errors import DataError, JobError

logger = logging.getLogger(__name__)

REPORT_FILE = "evaluation.json"
ARCHIVE_NAME = "model.tar.gz"


def resolve_artifact(path: Path, scratch: Path) -> Path | None:
    """The model directory behind ``path`` (unpacking a ``model.tar.gz`` into ``scratch``), or
    ``None`` when ``path`` is an empty directory (no approved model yet)."""
    from model_artifact import INFO_FILE

    if path.is_file() and path.name.endswith(".tar.gz"):
        target = Path(tempfile.mkdtemp(prefix="artifact-", dir=scratch))
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")
        return resolve_artifact(target, scratch)
    if not path.is_dir():
        raise DataError(f"{path} is neither a model directory nor a {ARCHIVE_NAME}")
    if (path / INFO_FILE).is_file():
        return path
    archives = sorted(path.rglob("*.tar.gz"))
    if len(archives) == 1:
        return resolve_artifact(archives[0], scratch)
    nested = sorted(p.parent for p in path.rglob(INFO_FILE))
    if len(nested) == 1:
        return nested[0]
    if not archives and not nested:
        return None
    raise DataError(f"{path} holds more than one model: give exactly one")


def data_sha256(sources: dict[str, str]) -> str:
    """The data hash the training job writes into the artifact (``training.job``)."""
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode("utf-8")).hexdigest()


def evaluate(
    prepared: Path,
    candidate: Path,
    approved: Path | None,
    *,
    seed: int = 42,
    resamples: int = 2000,
    batch_size: int = 128,
) -> dict[str, Any]:
    """The report (see the module docstring); ``approved`` may be ``None``."""
    from model_artifact import read_info
    from training.baseline import build_baseline
    from training.data import load_input
    from training.metrics import classification_report
    from training.model_comparison import compare, predict_artifact

    splits, summary = load_input(prepared, seed=seed)
    test = splits.test
    if not test:
        raise DataError(f"{prepared} has an empty test split: nothing to evaluate on")
    texts = [e.text for e in test]
    truth = [e.label for e in test]
    stories = [e.story or f"row-{i}" for i, e in enumerate(test)]
    labels = list(splits.labels)

    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        candidate_dir = resolve_artifact(candidate, Path(scratch))
        if candidate_dir is None:
            raise DataError(f"{candidate} holds no model artifact")
        approved_dir = resolve_artifact(approved, Path(scratch)) if approved else None
        candidate_info = read_info(candidate_dir)
        if list(candidate_info.labels) != labels:
            raise DataError(f"the candidate's labels {candidate_info.labels} differ from {labels}")
        logger.info("candidate: predicting %d test rows", len(texts))
        candidate_predicted = predict_artifact(candidate_dir, texts, batch_size)
        approved_predicted = None
        approved_info = None
        if approved_dir is not None:
            approved_info = read_info(approved_dir)
            logger.info("approved model: predicting %d test rows", len(texts))
            approved_predicted = predict_artifact(approved_dir, texts, batch_size)

    baseline = build_baseline(seed).fit(
        [e.text for e in splits.train], [e.label for e in splits.train]
    )
    baseline_predicted = [str(label) for label in baseline.predict(texts)]

    def against(other: Sequence[str]) -> dict[str, Any]:
        result = compare(
            stories, truth, candidate_predicted, other, labels, resamples=resamples, seed=seed
        )
        return {
            "candidate_macro_f1": result["model_macro_f1"],
            "reference_macro_f1": result["baseline_macro_f1"],
            "difference": result["difference"],
            "difference_95ci_story_bootstrap": result["difference_95ci_story_bootstrap"],
            "share_of_resamples_candidate_ahead": result["share_of_resamples_model_ahead"],
            "candidate_errors": result["model_errors"],
            "reference_errors": result["baseline_errors"],
            "candidate_macro_f1_std": result["model_macro_f1_std"],
            "candidate_accuracy": result["model_accuracy"],
            "candidate_accuracy_std": result["model_accuracy_std"],
            "test_rows": result["test_rows"],
            "test_stories": result["test_stories"],
            "resamples": resamples,
        }

    versus_baseline = against(baseline_predicted)
    versus_approved = against(approved_predicted) if approved_predicted is not None else None
    lows = [versus_baseline["difference_95ci_story_bootstrap"][0]]
    if versus_approved is not None:
        lows.append(versus_approved["difference_95ci_story_bootstrap"][0])
    report_detail = classification_report(truth, candidate_predicted, labels)
    confusion = Counter(zip(truth, candidate_predicted, strict=True))
    return {
        # Model Registry's model-quality statistics format.
        "multiclass_classification_metrics": {
            "macro_f1": {
                "value": versus_baseline["candidate_macro_f1"],
                "standard_deviation": versus_baseline["candidate_macro_f1_std"],
            },
            "accuracy": {
                "value": versus_baseline["candidate_accuracy"],
                "standard_deviation": versus_baseline["candidate_accuracy_std"],
            },
            "weighted_f1": {"value": round(_weighted_f1(report_detail["per_class"]), 4)},
            "confusion_matrix": {t: {p: confusion.get((t, p), 0) for p in labels} for t in labels},
        },
        # What the condition step reads (deploy.pipeline_gate names these paths).
        "gate": {
            "baseline_difference": versus_baseline["difference"],
            "interval_low": min(lows),
            "has_approved_model": int(versus_approved is not None),
        },
        "comparisons": {"baseline": versus_baseline, "approved": versus_approved},
        "candidate": {
            "base_model": candidate_info.base_model,
            "max_length": candidate_info.max_length,
            "data_sha256": candidate_info.metadata.get("data_sha256"),
        },
        "approved": None
        if approved_info is None
        else {
            "base_model": approved_info.base_model,
            "data_sha256": approved_info.metadata.get("data_sha256"),
        },
        "data": {
            "sha256": data_sha256(summary.sources),
            "sources": summary.sources,
            "test_rows": len(test),
            "split": splits.method,
            "seed": splits.seed,
        },
    }


def _weighted_f1(per_class: dict[str, dict[str, float]]) -> float:
    support = sum(row["support"] for row in per_class.values())
    return sum(row["f1"] * row["support"] for row in per_class.values()) / (support or 1)


def write_report(report: dict[str, Any], output_dir: Path) -> Path:
    """Write ``evaluation.json`` whole (temp file, then rename)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / REPORT_FILE
    staging = path.with_name(f".{REPORT_FILE}.tmp")
    staging.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    staging.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate_candidate",
        description="Score a candidate model against the TF-IDF baseline and the approved model.",
    )
    parser.add_argument("--prepared", type=Path, required=True, help="training.prepare output")
    parser.add_argument("--candidate", type=Path, required=True, help="model dir or model.tar.gz")
    parser.add_argument("--approved", type=Path, help="the approved model (empty dir: none)")
    parser.add_argument("--output", type=Path, required=True, help="directory for evaluation.json")
    parser.add_argument("--seed", type=int, default=42, help="bootstrap and baseline seed")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    from model_artifact import ArtifactError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = evaluate(
            args.prepared,
            args.candidate,
            args.approved,
            seed=args.seed,
            resamples=args.resamples,
            batch_size=args.batch_size,
        )
        path = write_report(report, args.output)
    except (JobError, ArtifactError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    gate = report["gate"]
    macro_f1 = report["multiclass_classification_metrics"]["macro_f1"]["value"]
    sys.stderr.write(
        f"wrote {path}: macro-F1 {macro_f1}, vs baseline {gate['baseline_difference']:+.4f}, "
        f"interval low {gate['interval_low']:+.4f}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
