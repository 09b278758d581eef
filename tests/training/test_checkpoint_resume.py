"""A job stopped by SIGTERM resumes from its checkpoint and ends with the same weights."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from devtools.paths import REPO_ROOT
from tests.training.conftest import child_env, run_training, tiny_hyperparameters, write_job
from training.sagemaker_env import METRIC_DEFINITIONS

SIGNAL_AFTER_STEP = 8


def resume_hyperparameters(model_dir: Path) -> dict[str, object]:
    # ~70 steps with dropout on: long enough to interrupt, and RNG state matters on resume.
    return tiny_hyperparameters(
        model_dir, epochs=2, checkpoint_steps=25, early_stopping_patience=0, eval_steps=30
    )


def interrupt_after_step(base: Path, step: int, **env: str) -> tuple[int, str]:
    """Start the job, send SIGTERM once it has logged ``step``, return (exit code, output)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "train"],
        cwd=REPO_ROOT,
        env=child_env(base, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        found = re.search(r"METRIC step=(\d+) epoch", line)
        if found and int(found.group(1)) >= step:
            process.send_signal(signal.SIGTERM)
            break
    output.append(process.communicate(timeout=120)[0])
    return process.returncode, "".join(output)


@pytest.mark.slow
def test_sigterm_checkpoint_and_resume_match_an_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path, train_rows: bytes
):
    hp = resume_hyperparameters(tiny_model_dir)
    straight = write_job(tmp_path / "straight", hp, train_rows=train_rows)
    resumed = write_job(tmp_path / "resumed", hp, train_rows=train_rows)

    # The reference run goes alongside the interrupted one (its own folder, own process).
    reference = subprocess.Popen(
        [sys.executable, "-m", "training", "train"],
        cwd=REPO_ROOT,
        env=child_env(straight),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    code, output = interrupt_after_step(resumed, SIGNAL_AFTER_STEP)
    assert code == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in (resumed / "output" / "failure").read_text()
    assert not (resumed / "model" / "artifact.json").exists()
    checkpoints = sorted((resumed / "checkpoints").glob("step-*"))
    assert checkpoints and all((c / "manifest.json").is_file() for c in checkpoints)
    stopped_at = int(checkpoints[-1].name.removeprefix("step-"))
    assert stopped_at >= SIGNAL_AFTER_STEP

    again = run_training(resumed)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resumed from {checkpoints[-1]}" in again.stdout
    assert not (resumed / "output" / "failure").exists()

    reference_log = reference.communicate(timeout=120)[0]
    assert reference.returncode == 0, reference_log
    assert "resumed from" not in reference_log

    expected = load_file(straight / "model" / "model.safetensors")
    actual = load_file(resumed / "model" / "model.safetensors")
    assert expected.keys() == actual.keys()
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"weights differ after resume: {different[:5]}"

    # The uninterrupted run's log is what SageMaker scrapes: every metric is found.
    for definition in METRIC_DEFINITIONS:
        if definition["Name"] != "baseline:test_macro_f1":
            assert re.search(definition["Regex"], reference_log), definition["Name"]


@pytest.mark.slow
def test_sigterm_to_a_two_process_job_checkpoints_and_the_restart_finishes(
    tmp_path: Path, tiny_model_dir: Path, train_rows: bytes
):
    """SageMaker signals the launcher (the container's main process); torchrun passes the
    signal to both workers, they agree to stop at the same step, rank 0 checkpoints."""
    hp = resume_hyperparameters(tiny_model_dir) | {"num_processes": 2}
    base = write_job(tmp_path / "job", hp, train_rows=train_rows)
    code, output = interrupt_after_step(base, SIGNAL_AFTER_STEP)
    assert code != 0, output
    assert "launching 2 processes" in output
    assert "stopped by SIGTERM" in (base / "output" / "failure").read_text(), output
    assert not (base / "model" / "artifact.json").exists()
    checkpoints = sorted((base / "checkpoints").glob("step-*"))
    assert checkpoints and all((c / "manifest.json").is_file() for c in checkpoints), output
    stopped_at = int(checkpoints[-1].name.removeprefix("step-"))
    assert stopped_at >= SIGNAL_AFTER_STEP

    again = run_training(base, timeout=180)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log
    assert f"resumed from {checkpoints[-1]}" in log
    assert (base / "model" / "artifact.json").is_file()
    assert not (base / "output" / "failure").exists()


# A save that needs longer than torchrun's default grace (30 s) between its SIGTERM and SIGKILL.
SLOW_SAVE_S = 32


@pytest.mark.slow
def test_a_two_process_checkpoint_that_outlasts_torchruns_default_grace_survives(
    tmp_path: Path, tiny_model_dir: Path, train_rows: bytes
):
    """SageMaker waits 120 s after SIGTERM; torchrun must not kill the workers after 30 s.

    The first fsync of each worker (rank 0's checkpoint; rank 1 writes none) takes
    SLOW_SAVE_S, as on a slow volume (tests/training/slow_fsync). Takes about a minute."""
    hp = tiny_hyperparameters(
        tiny_model_dir, num_processes=2, checkpoint_steps=0, early_stopping_patience=0
    )
    base = write_job(tmp_path / "job", hp, train_rows=train_rows)
    started = time.monotonic()
    code, output = interrupt_after_step(
        base,
        2,
        PYTHONPATH=str(Path(__file__).parent / "slow_fsync"),
        SLOW_FSYNC_S=str(SLOW_SAVE_S),
    )
    assert time.monotonic() - started > SLOW_SAVE_S, output  # the slow save did happen
    assert code != 0, output
    assert "launching 2 processes" in output
    assert "stopped by SIGTERM" in (base / "output" / "failure").read_text(), output
    checkpoints = sorted((base / "checkpoints").glob("step-*"))
    assert [c.name for c in checkpoints if (c / "manifest.json").is_file()], output
    assert not list((base / "checkpoints").glob(".tmp-*")), output
