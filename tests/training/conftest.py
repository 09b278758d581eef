"""Fixtures for the training job's tests: a temporary /opt/ml tree around a tiny model.

The base model is the suite's tiny 2-layer BERT (``tiny_model_dir``: random weights, the real
MiniLM tokenizer), so a whole job (data, fine-tuning, evaluation, artifact) takes seconds.
The data is a slice of the committed sample: every 6th row, so every category and many
stories are present.
"""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from devtools.paths import REPO_ROOT, SAMPLE_DATA
from devtools.processes import offline_env

TRAIN_SLICE_STEP = 6


def write_job(
    base: Path,
    hyperparameters: Mapping[str, Any],
    *,
    train_rows: bytes | None,
) -> Path:
    """Lay out ``base`` as SageMaker does: config files and the ``train`` channel."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    # Every value a string, as SageMaker writes them.
    (config / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    if train_rows is not None:
        channel = base / "input" / "data" / "train"
        channel.mkdir(parents=True, exist_ok=True)
        (channel / "newsCorpora.csv").write_bytes(train_rows)
    return base


def tiny_hyperparameters(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Small and fast: a few dozen steps of the tiny model."""
    values: dict[str, Any] = {
        "model_name_or_path": str(model_dir),
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "max_length": 32,
        "logging_steps": 1,
        "eda": False,
        "run_baseline": False,
        "misclassified_examples": 5,
        "export_onnx": False,  # a few seconds each; the image test checks the export
    }
    values.update(overrides)
    return values


def run_training(
    base: Path, *, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m training train`` in a child process, as the image runs it."""
    return subprocess.run(
        [sys.executable, "-m", "training", "train"],
        cwd=REPO_ROOT,
        env=child_env(base, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def child_env(base: Path, **extra: str) -> dict[str, str]:
    # One thread per process: bit-for-bit repeatable on CPU, and kind to a shared machine.
    return offline_env(
        SAGEMAKER_BASE_DIR=str(base),
        OMP_NUM_THREADS="1",
        TRAINING_JOB_NAME="test-job",
        **extra,
    )


@pytest.fixture(scope="session")
def train_rows() -> bytes:
    lines = lzma.decompress(SAMPLE_DATA.read_bytes()).splitlines(keepends=True)
    return b"".join(lines[::TRAIN_SLICE_STEP])


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """In-process training on one thread, as the child processes do; restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty SAGEMAKER_BASE_DIR for in-process ``main()`` calls."""
    base = tmp_path / "opt_ml"
    base.mkdir()
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    monkeypatch.setenv("TRAINING_JOB_NAME", "test-job")
    for key in list(os.environ):
        if key.startswith("SM_"):
            monkeypatch.delenv(key)
    return base
