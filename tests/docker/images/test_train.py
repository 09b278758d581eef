"""The `train` image run as SageMaker runs it: `IMAGE train` on a small /opt/ml, and `IMAGE`
with no argument (SageMaker's local mode) on a job with a bad hyperparameter."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.artifacts import LABELS
from tests.docker.engine import BuildResult, Engine
from tests.docker.images.support import lay_out_training_job, needs_images, run_training
from tests.docker.support import TINY_JOB

pytestmark = needs_images


def test_train_writes_a_model_artifact(trained_model: Path) -> None:
    info = json.loads((trained_model / "artifact.json").read_text())
    assert tuple(info["labels"]) == LABELS
    assert (trained_model / "model.onnx").stat().st_size > 0
    assert not (trained_model.parent / "output" / "failure").exists()


def test_train_with_no_argument_runs_training_and_reports_a_bad_hyperparameter(
    engine: Engine, images: dict[str, BuildResult], tiny_model_dir: Path, tmp_path: Path
) -> None:
    # `docker run IMAGE` (SageMaker's local mode), on a job whose hyperparameter is invalid:
    # the training code itself answers, with output/failure and a non-zero exit.
    base_dir = lay_out_training_job(
        tmp_path / "opt_ml", tiny_model_dir, {**TINY_JOB, "max_steps": "many"}
    )
    result = run_training(engine, base_dir)
    assert result.returncode != 0
    failure = (base_dir / "output" / "failure").read_text()
    assert "max_steps" in failure
    assert not (base_dir / "model" / "artifact.json").exists()
