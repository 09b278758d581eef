"""The pipeline's evaluation step: the report Model Registry and the gate read.

Runs on the committed sample (prepared by ``training.prepare``) with the suite's tiny random
BERT as candidate, so the baseline's figures are real and the candidate's are those of an
untrained model: the gate's fields must then say "worse than the baseline".
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from deploy import pipeline_gate
from devtools.artifacts import LABELS
from devtools.paths import SAMPLE_DATA
from training.data import load_input
from training.evaluate_candidate import data_sha256, evaluate, main, resolve_artifact
from training.prepare import prepare


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(SAMPLE_DATA, out, eda=False)
    return out


def _tarball(model_dir: Path, target: Path) -> Path:
    # What a SageMaker training job uploads: the model directory's files at the root.
    target.mkdir(parents=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as archive:
        for path in model_dir.iterdir():
            archive.add(path, arcname=path.name)
    return target


def test_report_has_model_quality_metrics_comparisons_and_gate(
    prepared: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    candidate = _tarball(tiny_model_dir, tmp_path / "candidate")  # the step's input folder
    empty = tmp_path / "approved"
    empty.mkdir()
    (empty / "NONE").write_text("no approved model yet\n")  # the pipeline's marker object

    report = evaluate(prepared, candidate, empty, resamples=200, batch_size=64)

    splits, summary = load_input(prepared)
    metrics = report["multiclass_classification_metrics"]
    for name in ("macro_f1", "accuracy"):
        assert set(metrics[name]) == {"value", "standard_deviation"}
        assert 0 <= metrics[name]["value"] <= 1
    matrix = metrics["confusion_matrix"]
    assert list(matrix) == list(LABELS)
    assert sum(sum(row.values()) for row in matrix.values()) == len(splits.test)

    versus = report["comparisons"]["baseline"]
    # The baseline's figure is the TF-IDF model's own, as training.baseline reports it.
    assert versus["reference_macro_f1"] == pytest.approx(0.6007, abs=0.02)
    assert versus["test_rows"] == len(splits.test)
    assert report["comparisons"]["approved"] is None
    assert report["gate"] == {
        "baseline_difference": versus["difference"],
        "interval_low": versus["difference_95ci_story_bootstrap"][0],
        "has_approved_model": 0,
    }
    # A random tiny model trails the baseline: the gate refuses it.
    assert report["gate"]["baseline_difference"] < 0
    assert pipeline_gate.decide(report, auto_approve=True).decision == pipeline_gate.REJECTED
    assert report["data"]["sha256"] == data_sha256(summary.sources)
    assert pipeline_gate.read_path(report, pipeline_gate.DATA_SHA256) == report["data"]["sha256"]


def test_the_candidate_against_itself_as_approved_model_differs_by_zero(
    prepared: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert main([
        "--prepared", str(prepared), "--candidate", str(tiny_model_dir),
        "--approved", str(tiny_model_dir), "--output", str(tmp_path / "out"),
        "--resamples", "100",
    ]) == 0  # fmt: skip
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    approved = report["comparisons"]["approved"]
    assert approved["difference"] == 0
    assert approved["difference_95ci_story_bootstrap"] == [0, 0]
    assert report["gate"]["interval_low"] <= 0  # so at best pending, never auto-approved
    assert report["gate"]["has_approved_model"] == 1
    metrics = report["multiclass_classification_metrics"]
    assert metrics["macro_f1"]["value"] == approved["candidate_macro_f1"]


def test_resolve_artifact_finds_the_model_or_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert resolve_artifact(tiny_model_dir, scratch) == tiny_model_dir
    unpacked = resolve_artifact(_tarball(tiny_model_dir, tmp_path / "job"), scratch)
    assert unpacked is not None and (unpacked / "artifact.json").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_artifact(empty, scratch) is None
    two = tmp_path / "two"
    shutil.copytree(tiny_model_dir, two / "a")
    shutil.copytree(tiny_model_dir, two / "b")
    with pytest.raises(Exception, match="more than one model"):
        resolve_artifact(two, scratch)


def test_a_missing_candidate_is_a_one_line_error(prepared: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "candidate"
    empty.mkdir()
    code = main(["--prepared", str(prepared), "--candidate", str(empty), "--output", str(tmp_path)])
    assert code == 1
    assert "holds no model artifact" in capsys.readouterr().err
    assert not (tmp_path / "evaluation.json").exists()
