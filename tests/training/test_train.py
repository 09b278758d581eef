"""A good run of the real entry point leaves a loadable artifact and the reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devtools.artifacts import LABELS
from devtools.paths import REPO_ROOT
from model_artifact import load_artifact
from tests.training.conftest import run_training, tiny_hyperparameters, write_job
from training.__main__ import main


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_good_run_leaves_an_artifact_and_reports(
    opt_ml: Path, tiny_model_dir: Path, train_rows: bytes
):
    write_job(
        opt_ml,
        tiny_hyperparameters(
            tiny_model_dir,
            run_baseline=True,
            eda=True,
            eval_steps=20,
            sagemaker_program="train",  # SageMaker's own keys are ignored
        ),
        train_rows=train_rows,
    )
    assert main(["train"]) == 0
    assert not (opt_ml / "output" / "failure").exists()

    model, tokenizer, info = load_artifact(opt_ml / "model")
    assert info.labels == LABELS
    assert info.max_length == 32 == tokenizer.model_max_length
    assert model.config.id2label == dict(enumerate(LABELS))
    assert (opt_ml / "model" / "model.safetensors").is_file()
    assert not list((opt_ml / "model").glob(".staging-*"))
    meta = info.metadata
    assert meta["job_name"] == "test-job"
    assert len(meta["data_sha256"]) == 64
    assert meta["hyperparameters"]["max_length"] == 32
    assert 0 <= meta["metrics"]["test_macro_f1"] <= 1
    assert meta["metrics"]["baseline_test_macro_f1"] is not None

    data = opt_ml / "output" / "data"
    evaluation = json.loads((data / "evaluation.json").read_text())
    test = evaluation["test"]
    assert set(test["per_class"]) == set(LABELS)
    assert sum(map(sum, test["confusion_matrix"])) == test["rows"] == meta["rows"]["test"]
    assert evaluation["comparison"]["test_macro_f1"]["baseline"] == pytest.approx(
        meta["metrics"]["baseline_test_macro_f1"]
    )
    assert (data / "confusion_matrix.png").stat().st_size > 1000
    assert json.loads((data / "confusion_matrix.json").read_text())["labels"] == list(LABELS)
    mistakes = [
        json.loads(line) for line in (data / "misclassified.jsonl").read_text().splitlines()
    ]
    assert 0 < len(mistakes) <= 5
    assert all(row["label"] != row["predicted"] for row in mistakes)
    assert (data / "baseline.json").is_file()
    assert (data / "eda").is_dir()

    lines = [json.loads(line) for line in (data / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["split"] == "train"]
    validations = [line for line in lines if line["split"] == "validation"]
    summary = json.loads((data / "training_summary.json").read_text())
    # Every step logged; evaluation at step 20, 40, ... and after each of the 2 epochs.
    assert [line["step"] for line in train] == list(range(1, summary["steps"] + 1))
    assert len(validations) >= 3
    assert validations[-1]["step"] == summary["steps"]
    # The tiny model does learn: the loss of the last steps is below the first steps'.
    first, last = train[:5], train[-5:]
    assert sum(x["train_loss"] for x in last) < sum(x["train_loss"] for x in first)
    # The artifact holds the best validation macro-F1, not merely the last weights.
    best = max(validations, key=lambda line: line["validation_macro_f1"])
    assert meta["metrics"]["validation_macro_f1"] == pytest.approx(best["validation_macro_f1"])
    assert summary["best_step"] == best["step"]


@pytest.mark.slow
def test_a_model_the_exporter_cannot_handle_still_leaves_its_artifact(
    tmp_path: Path, tiny_model_dir: Path, train_rows: bytes
):
    # A module that refuses to import stands in for a missing or broken exporter: the job
    # says why there is no model.onnx and succeeds; the server will run PyTorch.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "onnxscript.py").write_text('raise ImportError("no exporter here")\n')
    base = write_job(
        tmp_path / "opt_ml",
        tiny_hyperparameters(tiny_model_dir, max_steps=2, epochs=1, export_onnx=True),
        train_rows=train_rows,
    )
    result = run_training(base, PYTHONPATH=f"{shadow}{os.pathsep}{REPO_ROOT}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    model_dir = base / "model"
    assert load_artifact(model_dir)[2].labels == LABELS
    assert not (model_dir / "model.onnx").exists()
    assert not [p.name for p in model_dir.iterdir() if p.name.startswith(".")]
    assert "no model.onnx in the artifact (the server will run PyTorch)" in output
    assert "no exporter here" in output


@pytest.mark.usefixtures("one_torch_thread")
def test_a_diverging_run_fails_the_job_and_leaves_no_model(
    opt_ml: Path, tiny_model_dir: Path, train_rows: bytes, tmp_path: Path
):
    # NaN base weights give a NaN loss from the first step: what a diverged run looks like.
    import torch

    from model_artifact import save_artifact

    model, tokenizer, info = load_artifact(tiny_model_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    nan_model = tmp_path / "nan_model"
    save_artifact(model, tokenizer, info, nan_model)
    write_job(
        opt_ml,
        tiny_hyperparameters(nan_model, max_steps=2, epochs=1),
        train_rows=train_rows,
    )
    assert main(["train"]) != 0
    failure = (opt_ml / "output" / "failure").read_text()
    assert "training diverged" in failure
    assert "learning_rate" in failure
    assert not (opt_ml / "model" / "model.safetensors").exists()
