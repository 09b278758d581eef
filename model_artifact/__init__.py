"""The model artifact: the one contract between training and serving.

A model directory (``/opt/ml/model`` in SageMaker, unpacked from ``model.tar.gz``) holds:

- ``config.json``: the Hugging Face model config, with ``id2label`` / ``label2id``;
- ``model.safetensors``: the weights;
- the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``, ...), with
  ``model_max_length`` set to the max length the model was trained with;
- ``artifact.json``: :class:`ArtifactInfo`, written last, so a directory without it is not
  a finished artifact;
- optionally ``model.onnx``: the same model for ONNX Runtime, added to a finished artifact by
  :func:`model_artifact.onnx.export_onnx` (the server's CPU path runs it when present);
- optionally ``model.optimized.onnx`` and ``model.int8.onnx``: faster variants of it, each
  checked against it on evaluation texts, the check recorded in ``artifact.json``'s
  ``metadata["onnx_variants"]`` (:mod:`model_artifact.variants`).

Serving reads labels, tokenizer and max length from here and nowhere else. This module
imports nothing heavy at import time; ``save_artifact`` and ``load_artifact`` import
transformers when called.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

FORMAT_VERSION = 1
INFO_FILE = "artifact.json"
ONNX_FILE = "model.onnx"
# The ONNX variants the server can run on a CPU (``model_artifact.variants``); fp32 is the
# export itself, the others are optional files derived from it.
ONNX_VARIANT_FILES = {
    "fp32": ONNX_FILE,
    "optimized": "model.optimized.onnx",
    "int8": "model.int8.onnx",
}


class ArtifactError(Exception):
    """The directory is not a complete, readable model artifact."""


@dataclass(frozen=True)
class ArtifactInfo:
    """What serving needs beyond the Hugging Face files, plus provenance for people."""

    labels: tuple[str, ...]
    max_length: int
    base_model: str
    format_version: int = FORMAT_VERSION
    # Free-form provenance: data hash, metrics, hyperparameters, job name, timestamps.
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        payload = asdict(self)
        payload["labels"] = list(self.labels)
        return json.dumps(payload, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArtifactInfo:
        try:
            raw = json.loads(text)
            info = cls(
                labels=tuple(str(label) for label in raw["labels"]),
                max_length=int(raw["max_length"]),
                base_model=str(raw["base_model"]),
                format_version=int(raw["format_version"]),
                metadata=dict(raw.get("metadata", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"{INFO_FILE} is malformed: {exc}") from exc
        if info.format_version != FORMAT_VERSION:
            raise ArtifactError(
                f"{INFO_FILE} has format_version {info.format_version}; this code reads "
                f"version {FORMAT_VERSION}. Retrain or upgrade the serving image."
            )
        if not info.labels or info.max_length < 2:
            raise ArtifactError(f"{INFO_FILE} needs at least one label and max_length >= 2")
        return info


def read_info(model_dir: Path) -> ArtifactInfo:
    """Read ``artifact.json``; raise :class:`ArtifactError` when the artifact is incomplete."""
    path = model_dir / INFO_FILE
    if not path.is_file():
        raise ArtifactError(
            f"{model_dir} holds no {INFO_FILE}: it is not a finished model artifact "
            "(train one with `python -m training`, or point SAGEMAKER_BASE_DIR elsewhere)"
        )
    return ArtifactInfo.from_json(path.read_text(encoding="utf-8"))


def save_artifact(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    info: ArtifactInfo,
    model_dir: Path,
) -> None:
    """Write a complete artifact into ``model_dir``, all or nothing.

    Files are written to a staging directory beside their destination and moved in only when
    all of them exist; ``artifact.json`` goes last. ``model_dir`` itself may be a mount point
    (it is in SageMaker), so it is filled rather than replaced.
    """
    id2label = dict(enumerate(info.labels))
    if dict(model.config.id2label) != id2label:
        raise ArtifactError(
            f"model labels {model.config.id2label} do not match artifact labels {info.labels}"
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.model_max_length = info.max_length
        tokenizer.save_pretrained(staging)
        (staging / INFO_FILE).write_text(info.to_json(), encoding="utf-8")
        (model_dir / INFO_FILE).unlink(missing_ok=True)
        # An ONNX copy of the model this one replaces would be served in its place.
        for onnx_file in ONNX_VARIANT_FILES.values():
            (model_dir / onnx_file).unlink(missing_ok=True)
        names = sorted(p.name for p in staging.iterdir() if p.name != INFO_FILE)
        for name in [*names, INFO_FILE]:
            target = model_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            (staging / name).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_tokenizer(model_dir: Path) -> tuple[PreTrainedTokenizerBase, ArtifactInfo]:
    """The artifact's tokenizer (truncating at its max length) and info, without the weights."""
    info = read_info(model_dir)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot load the tokenizer in {model_dir}: {exc}") from exc
    tokenizer.model_max_length = info.max_length
    return tokenizer, info


def load_artifact(
    model_dir: Path,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ArtifactInfo]:
    """Load model, tokenizer and info from a finished artifact, never touching the network."""
    tokenizer, info = load_tokenizer(model_dir)
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot load the model in {model_dir}: {exc}") from exc
    labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    if labels != info.labels:
        raise ArtifactError(f"config.json labels {labels} differ from {INFO_FILE} {info.labels}")
    return model, tokenizer, info
