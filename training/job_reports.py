"""What a training job writes besides the weights: its reports and the artifact's metadata.

``output/data``: ``data_summary.json``, the EDA report and the baseline (before training),
the test metric line and ``training_summary.json`` (after); the same figures go into the
model artifact's metadata, so a model says what it was trained on and how well it did.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model_artifact import ArtifactInfo
    from training.data import DataSummary, Example, Splits
    from training.distributed import DistContext
    from training.hyperparameters import Hyperparameters
    from training.train import TrainResult


@dataclass(frozen=True)
class JobData:
    """The splits a job trains on, the rows it uses of them, and where they came from."""

    splits: Splits
    summary: DataSummary
    train_rows: list[Example]  # the training split, or the row budget's subset of it
    validation_rows: list[Example]  # likewise, under max_eval_rows

    @property
    def sha256(self) -> str:
        """One hash of all the input files, for the metadata and the checkpoint fingerprint."""
        sources = json.dumps(self.summary.sources, sort_keys=True).encode("utf-8")
        return hashlib.sha256(sources).hexdigest()

    def rows_used(self) -> dict[str, int]:
        return {
            "train": len(self.train_rows),
            "validation": len(self.validation_rows),
            "test": len(self.splits.test),
        }


def write_data_reports(
    out_dir: Path,
    data: JobData,
    hp: Hyperparameters,
    *,
    tokenizer: Any,
    tokenizer_name: str,
) -> dict[str, Any] | None:
    """``data_summary.json``, then the EDA report and the baseline as ``hp`` asks; returns
    the baseline's report (``None`` when it is not run)."""
    write_json(
        out_dir / "data_summary.json",
        {
            **data.summary.to_dict(),
            "split": data.splits.method,
            "data_sha256": data.sha256,
            "rows_used": data.rows_used(),
        },
    )
    if hp.eda:
        from training.eda import write_eda_report

        # The base model's own tokenizer, also when it came from the Hub.
        write_eda_report(
            data.splits,
            out_dir / "eda",
            tokenizer=tokenizer,
            tokenizer_name=tokenizer_name,
            max_length=hp.max_length,
            summary=data.summary,
        )
    if not hp.run_baseline:
        return None
    from training.baseline import run_baseline, write_baseline

    baseline = run_baseline(data.splits, seed=hp.seed)
    write_baseline(baseline, out_dir)
    return baseline


def test_metric_line(
    step: int, test_report: dict[str, Any], baseline: dict[str, Any] | None
) -> dict[str, float | int]:
    """The ``test`` line of metrics.jsonl (and of SageMaker's metric regexes)."""
    line: dict[str, float | int] = {
        "step": step,
        "test_accuracy": test_report["accuracy"],
        "test_macro_f1": test_report["macro_f1"],
    }
    if baseline:
        line["baseline_test_macro_f1"] = baseline["test"]["macro_f1"]
    return line


def training_summary(
    result: TrainResult, *, train_rows: int, ctx: DistContext, job_seconds: float
) -> dict[str, Any]:
    """``training_summary.json``: how the run went, from the loop's result."""
    state = result.state
    return {
        "steps": state.step,
        "planned_steps": result.total_steps,
        "epochs": round(state.samples / max(train_rows, 1), 3),
        "best_step": state.best_step,
        "stopped_early": state.stopped_early,
        "resumed_from": result.resumed_from,
        "train_seconds": round(state.train_seconds, 2),
        "train_samples_per_second": round(result.samples_per_second, 2),
        "precision": result.precision,
        "world_size": ctx.world_size,
        "device": str(ctx.device),
        "job_seconds": round(job_seconds, 2),
    }


def artifact_info(
    *,
    labels: tuple[str, ...],
    hp: Hyperparameters,
    base_name: str,
    job_name: str,
    data: JobData,
    test_report: dict[str, Any],
    baseline: dict[str, Any] | None,
    result: TrainResult,
    summary: dict[str, Any],
) -> ArtifactInfo:
    """What the artifact says about itself: labels and max length for serving, and the
    provenance, metrics and knobs of the run for people."""
    from model_artifact import ArtifactInfo

    return ArtifactInfo(
        labels=labels,
        max_length=hp.max_length,
        base_model=base_name,
        metadata={
            "job_name": job_name,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_sha256": data.sha256,
            "data_sources": data.summary.sources,
            "split": data.splits.method,
            "rows": data.rows_used(),
            "metrics": {
                "test_accuracy": test_report["accuracy"],
                "test_macro_f1": test_report["macro_f1"],
                "validation_macro_f1": result.state.best_macro_f1,
                "baseline_test_macro_f1": baseline["test"]["macro_f1"] if baseline else None,
            },
            "training": summary,
            "hyperparameters": hp.to_dict(),
            "versions": _versions(),
        },
    )


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}
