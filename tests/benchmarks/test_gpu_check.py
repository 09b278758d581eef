"""The prepared GPU check keeps working: its --smoke mode runs end to end on a CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devtools.processes import offline_env

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_prints_one_complete_summary() -> None:
    run = subprocess.run(
        [str(REPO_ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"],
        cwd=REPO_ROOT,
        env=offline_env(PYTHON=sys.executable, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout)
    assert summary["mode"] == "smoke"
    assert summary["versions"]["torch"]
    training = summary["training"]
    for model in ("all-MiniLM-L6-v2", "distilbert-base (random weights)"):
        assert training[model]["samples_per_second"] > 0
        assert training[model]["share_of_measured_matmul"] > 0
    accuracy = summary["accuracy"]
    assert 0 <= accuracy["test_macro_f1"] <= 1
    assert 0 <= accuracy["baseline_test_macro_f1"] <= 1
    levels = summary["serving"]["levels"]
    assert set(levels) == {"1", "32", "256"}
    for level in levels.values():
        assert level["texts_per_s"] > 0
    assert summary["serving"]["model_only_texts_per_second"]["8"] > 0


def test_gpu_check_full_mode_refuses_a_machine_without_a_gpu() -> None:
    run = subprocess.run(
        [str(REPO_ROOT / "benchmarks" / "gpu_check.sh")],
        cwd=REPO_ROOT,
        env=offline_env(PYTHON=sys.executable, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "no CUDA device" in run.stderr
