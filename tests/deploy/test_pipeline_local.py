"""``python -m deploy pipeline --local`` end to end on the bundled sample, on the CPU.

Two real runs through the CLI, each step a real process (prepare, the training job under the
SageMaker contract with the offline MiniLM, the evaluation step): a candidate trained on a
few hundred rows beats the TF-IDF baseline and is registered; a candidate trained for one
step at a tiny learning rate is worse than the baseline, and the gate refuses it (exit 6, the
registry unchanged). It costs about 200 CPU-seconds (6 processes, each importing torch);
measured at 483 s wall on the development machine while four other engineers' jobs kept its
two cores busy (load average 7-8), so expect 2 to 3 minutes on CI's idle two cores.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from deploy import cli, pipeline_gate
from deploy.errors import JobFailedError
from deploy.model_registry import LocalRegistry
from devtools.artifacts import minilm_dir
from devtools.paths import SAMPLE_DATA

# Small enough for CI's 2 cores, large enough to beat the baseline on the sample.
GOOD = {
    "epochs": "1", "batch_size": "16", "learning_rate": "2e-4", "max_length": "32",
    "max_train_rows": "480", "max_eval_rows": "200", "export_onnx": "false",
}  # fmt: skip
BAD = {**GOOD, "max_steps": "1", "learning_rate": "1e-7"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The step processes inherit this environment: no model hub, quiet tokenizers.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


def _pipeline(tmp_path: Path, *args: str, hp: dict[str, str] | None = None) -> tuple[int, str]:
    hp_flags = [flag for key, value in (hp or {}).items() for flag in ("--hp", f"{key}={value}")]
    out = io.StringIO()
    registry = ["--registry-dir", str(tmp_path / "registry"), "--resamples", "300"]
    code = cli.main(["pipeline", *args, "--local", *registry, *hp_flags], stdout=out)
    return code, out.getvalue()


@pytest.mark.slow
def test_local_pipeline_registers_a_good_candidate_and_refuses_a_bad_one(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry", "news-classifier")

    code, out = _pipeline(
        tmp_path, "--raw-data", str(SAMPLE_DATA), "--work-dir", str(tmp_path / "good"),
        "--auto-approve", hp=GOOD,
    )  # fmt: skip
    assert code == 0, out
    for step in ("Prepare", "Train", "Evaluate"):
        assert f"step {step} Succeeded" in out
    (package,) = registry.packages()
    evaluation = json.loads((package.path / "evaluation.json").read_text())
    assert evaluation["gate"]["baseline_difference"] > 0
    assert evaluation["comparisons"]["approved"] is None  # the first model of the group
    # Registered with the status the gate's rule gives (Approved when the interval clears 0).
    assert package.status == pipeline_gate.decide(evaluation, auto_approve=True).decision
    assert package.status in {pipeline_gate.APPROVED, pipeline_gate.PENDING}
    assert (
        package.metrics["macro_f1"]["value"]
        == evaluation["comparisons"]["baseline"]["candidate_macro_f1"]
    )
    # The data hash of the evaluation is the one the training job wrote into the model.
    artifact = json.loads((package.model_dir / "artifact.json").read_text())
    assert package.data_sha256 == artifact["metadata"]["data_sha256"]
    # The data report's token lengths come from the base model's own tokenizer.
    eda = json.loads((tmp_path / "good" / "prepared" / "eda" / "report.json").read_text())
    assert eda["tokenizer"] == str(minilm_dir())
    assert eda["title_tokens"]["max"] > 0

    if package.status == pipeline_gate.PENDING:
        code, out = _pipeline(tmp_path, "approve")
        assert (code, out.strip()) == (0, f"version {package.version} Approved")
    assert registry.latest() is not None

    code, out = _pipeline(
        tmp_path, "--raw-data", str(SAMPLE_DATA), "--work-dir", str(tmp_path / "bad"),
        "--auto-approve", hp=BAD,
    )  # fmt: skip
    assert code == JobFailedError.exit_code, out
    assert "step Gate Rejected" in out
    assert [p.version for p in registry.packages()] == [1]  # nothing registered
    refused = json.loads((tmp_path / "bad" / "evaluation" / "evaluation.json").read_text())
    assert refused["gate"]["baseline_difference"] < 0
    # Compared with the approved model too, which it trails.
    assert refused["comparisons"]["approved"]["difference"] < 0
    for path in (pipeline_gate.BASELINE_DIFFERENCE, pipeline_gate.INTERVAL_LOW):
        assert isinstance(pipeline_gate.read_path(refused, path), float)

    code, out = _pipeline(tmp_path, "status")
    assert code == 0
    assert [json.loads(line)["version"] for line in out.splitlines()] == [1]


def test_local_run_needs_raw_data_and_an_empty_work_dir(tmp_path: Path) -> None:
    code, _ = _pipeline(tmp_path)
    assert code == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    code, _ = _pipeline(
        tmp_path, "--raw-data", str(SAMPLE_DATA), "--work-dir", str(tmp_path / "busy")
    )
    assert code == 2
