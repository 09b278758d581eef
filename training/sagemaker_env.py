"""The SageMaker training contract: where a training job finds its inputs and leaves its outputs.

A bring-your-own-container image without SageMaker's training toolkit gets the files under
``/opt/ml`` and ``TRAINING_JOB_NAME``, nothing else; this module reads them itself, and also
honours the ``SM_*`` variables that the toolkit (or a user imitating it) would set::

    $SAGEMAKER_BASE_DIR (default /opt/ml)
    ├── input/config/hyperparameters.json   every value a string (SM_HPS when absent)
    ├── input/config/inputdataconfig.json   channel names and modes
    ├── input/config/resourceconfig.json    hosts, current_host, network_interface_name
    ├── input/data/<channel>/               train, validation, test, pretrained (SM_CHANNEL_*)
    ├── model/                              the artifact (SM_MODEL_DIR), packed to model.tar.gz
    ├── output/data/                        reports and metrics (SM_OUTPUT_DATA_DIR)
    ├── output/failure                      why the job failed; the console shows 1,024 chars
    └── checkpoints/                        synced to S3 by managed spot training

Metrics go to stdout as ``METRIC key=value ...`` lines that the regexes of
:data:`METRIC_DEFINITIONS` scrape into CloudWatch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import HyperparameterError, JobError

DEFAULT_BASE_DIR = Path("/opt/ml")
# SageMaker shows this many characters of output/failure in DescribeTrainingJob.
FAILURE_REASON_LIMIT = 1024
# Keys SageMaker itself adds to hyperparameters.json; they are not ours to validate.
RESERVED_PREFIX = "sagemaker_"
RESERVED_KEYS = frozenset({"_tuning_objective_metric"})

METRIC_PREFIX = "METRIC"
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def _metric(name: str, key: str) -> dict[str, str]:
    return {"Name": name, "Regex": rf"{METRIC_PREFIX} .*\b{key}={_NUMBER}"}


# Pass to the estimator's ``metric_definitions``; "validation:macro_f1" is the tuning objective.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    _metric("train:loss", "train_loss"),
    _metric("train:learning_rate", "learning_rate"),
    _metric("train:samples_per_second", "samples_per_second"),
    _metric("train:epoch", "epoch"),
    _metric("validation:loss", "validation_loss"),
    _metric("validation:accuracy", "validation_accuracy"),
    _metric("validation:macro_f1", "validation_macro_f1"),
    _metric("test:accuracy", "test_accuracy"),
    _metric("test:macro_f1", "test_macro_f1"),
    _metric("baseline:test_macro_f1", "baseline_test_macro_f1"),
)


def format_metric_line(values: Mapping[str, float | int]) -> str:
    """``METRIC step=10 train_loss=0.4321``: one line, stable keys, plain decimal numbers."""
    parts = [METRIC_PREFIX]
    for key, value in values.items():
        if isinstance(value, int):
            parts.append(f"{key}={value}")
        elif math.isfinite(value):
            parts.append(f"{key}={value:.6g}")
    return " ".join(parts)


@dataclass(frozen=True)
class Cluster:
    """The hosts of this job and this process's place among them."""

    hosts: tuple[str, ...]
    current_host: str
    network_interface: str | None
    # From SM_NUM_GPUS when the toolkit set it; otherwise None and torch is asked.
    num_gpus: int | None

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)


@dataclass(frozen=True)
class SageMakerEnv:
    """Paths and settings of one training job, read from the files and ``SM_*`` variables."""

    base_dir: Path
    model_dir: Path
    output_data_dir: Path
    failure_file: Path
    checkpoint_dir: Path
    config_dir: Path
    data_dir: Path
    environ: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SageMakerEnv:
        """Resolve every path; reads no file, so it cannot fail and the failure file is known."""
        env = dict(os.environ if environ is None else environ)
        base = Path(env.get("SAGEMAKER_BASE_DIR") or DEFAULT_BASE_DIR)
        output_dir = Path(env.get("SM_OUTPUT_DIR") or base / "output")
        return cls(
            base_dir=base,
            model_dir=Path(env.get("SM_MODEL_DIR") or base / "model"),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR") or output_dir / "data"),
            failure_file=output_dir / "failure",
            checkpoint_dir=base / "checkpoints",
            config_dir=Path(env.get("SM_INPUT_CONFIG_DIR") or base / "input" / "config"),
            data_dir=base / "input" / "data",
            environ=env,
        )

    @property
    def job_name(self) -> str:
        return self.environ.get("TRAINING_JOB_NAME") or "local-training-job"

    def hyperparameters(self) -> dict[str, Any]:
        """hyperparameters.json (or SM_HPS), values decoded, SageMaker's own keys dropped."""
        path = self.config_dir / "hyperparameters.json"
        if path.is_file():
            raw = _read_json_object(path)
        elif self.environ.get("SM_HPS"):
            raw = _parse_json_object(self.environ["SM_HPS"], "the SM_HPS variable")
        else:
            raw = {}
        return {
            key: decode_hyperparameter(value)
            for key, value in raw.items()
            if not key.startswith(RESERVED_PREFIX) and key not in RESERVED_KEYS
        }

    def channels(self) -> dict[str, Path]:
        """Input channels by name: the folders under input/data, then SM_CHANNEL_<NAME>."""
        found: dict[str, Path] = {}
        if self.data_dir.is_dir():
            found.update({p.name: p for p in sorted(self.data_dir.iterdir()) if p.is_dir()})
        for key, value in self.environ.items():
            if key.startswith("SM_CHANNEL_") and value:
                found[key.removeprefix("SM_CHANNEL_").lower()] = Path(value)
        return found

    def declared_channels(self) -> tuple[str, ...]:
        """Channels named in inputdataconfig.json: a declared but absent one is an error."""
        path = self.config_dir / "inputdataconfig.json"
        return tuple(_read_json_object(path)) if path.is_file() else ()

    def cluster(self) -> Cluster:
        """resourceconfig.json, else SM_HOSTS / SM_CURRENT_HOST, else a single local host."""
        path = self.config_dir / "resourceconfig.json"
        config = _read_json_object(path) if path.is_file() else {}
        hosts_value = config.get("hosts")
        if hosts_value is None and self.environ.get("SM_HOSTS"):
            hosts_value = json.loads(self.environ["SM_HOSTS"])
        hosts = tuple(str(host) for host in hosts_value or ("algo-1",))
        current = str(config.get("current_host") or self.environ.get("SM_CURRENT_HOST") or hosts[0])
        if current not in hosts:
            raise JobError(
                f"resourceconfig.json: current_host {current!r} is not among hosts {hosts}"
            )
        interface = config.get("network_interface_name") or self.environ.get(
            "SM_NETWORK_INTERFACE_NAME"
        )
        gpus = self.environ.get("SM_NUM_GPUS")
        return Cluster(
            hosts=hosts,
            current_host=current,
            network_interface=str(interface) if interface else None,
            num_gpus=int(gpus) if gpus else None,
        )


def decode_hyperparameter(value: Any) -> Any:
    """Undo the encodings clients apply: ``"3"``, ``"\\"3\\""``, ``"true"``, ``"[1, 2]"``.

    The SageMaker Python SDK JSON-encodes every value, the console and boto3 pass plain
    strings, and ``str(True)`` gives ``"True"``; pydantic turns what is left into the field's
    type (``"True"`` and ``"3"`` included).
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        return text  # left as a string, which the field's validation then refuses by name
    if isinstance(decoded, str) and decoded != text:
        return decode_hyperparameter(decoded)
    return decoded


def write_failure(path: Path, message: str) -> None:
    """Write the failure reason atomically; SageMaker shows its first 1,024 characters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(message.rstrip() + "\n", encoding="utf-8")
    staging.replace(path)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobError(f"cannot read {path}: {exc}") from exc
    return _parse_json_object(text, str(path))


def _parse_json_object(text: str, where: str) -> dict[str, Any]:
    error = HyperparameterError if "hyperparameters" in where or "SM_HPS" in where else JobError
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{where} is not valid JSON ({exc}); it must hold one JSON object") from exc
    if not isinstance(value, dict):
        raise error(f"{where} must hold a JSON object, not {type(value).__name__}")
    return value
