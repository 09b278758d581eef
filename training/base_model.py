"""The base model a job fine-tunes: where it comes from, and loading it with our labels.

A ``pretrained`` input channel wins over the ``model_name_or_path`` hyperparameter; that is
either a local directory (checked here, so a typo fails before any work) or a Hub id (which
needs network access or the local HF cache when it is loaded).
"""

from __future__ import annotations

import json
import logging
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.errors import HyperparameterError, ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

PRETRAINED_CHANNEL = "pretrained"


@dataclass(frozen=True)
class BaseModel:
    """``path``: the directory to load (or the Hub id as a Path); ``name``: for the metadata."""

    path: Path
    name: str


def resolve_base_model(channels: Mapping[str, Path], model_name_or_path: str) -> BaseModel:
    """The base model to load; the ``pretrained`` channel wins over ``model_name_or_path``."""
    channel = channels.get(PRETRAINED_CHANNEL)
    if channel is not None:
        model_dir = _find_model_dir(channel)
        log.info("base model from the '%s' channel: %s", PRETRAINED_CHANNEL, model_dir)
        return BaseModel(model_dir, _config_name(model_dir) or f"{PRETRAINED_CHANNEL} channel")
    name = model_name_or_path
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", ".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise ModelLoadError(
            f"the base model path {name!r} (hyperparameter model_name_or_path) does not exist "
            "or is not a directory: give a saved model directory, a Hub id, or a "
            f"'{PRETRAINED_CHANNEL}' input channel"
        )
    return BaseModel(path, name)


def load_base_model(
    base: BaseModel, max_length: int
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, tuple[str, ...]]:
    """Tokenizer, a classifier with our labels, and those labels; a Hub id needs network (or
    the HF cache)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from training.data import LABELS

    hf_logging.disable_progress_bar()
    source = str(base.path) if base.path.is_dir() else base.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
            # A base model fine-tuned on other classes keeps its body, gets a new head.
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load the base model {base.name!r}: {exc}. Give a local model directory or "
            f"a '{PRETRAINED_CHANNEL}' channel when the job has no internet access (network "
            "isolation), or check the Hub id."
        ) from exc
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise HyperparameterError(
            f"hyperparameter 'max_length' ({max_length}) exceeds what {base.name!r} supports "
            f"({limit} positions): lower it"
        )
    return tokenizer, model, tuple(LABELS)


def _find_model_dir(channel: Path) -> Path:
    """The channel itself, its one sub-folder, or a model.tar.gz in it (unpacked to /tmp)."""
    if (channel / "config.json").is_file():
        return channel
    subdirs = [p for p in channel.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    if len(subdirs) == 1:
        return subdirs[0]
    archives = sorted(channel.glob("*.tar.gz"))
    if len(archives) == 1:
        target = Path(tempfile.mkdtemp(prefix="pretrained-"))
        with tarfile.open(archives[0]) as archive:
            archive.extractall(target, filter="data")
        return _find_model_dir(target)
    raise ModelLoadError(
        f"the '{PRETRAINED_CHANNEL}' channel ({channel}) holds no saved model: expected "
        "config.json with the weights and tokenizer files (save_pretrained output), or one "
        "model.tar.gz of them"
    )


def _config_name(model_dir: Path) -> str | None:
    try:
        value = json.loads((model_dir / "config.json").read_text("utf-8")).get("_name_or_path")
    except (OSError, ValueError):
        return None
    return str(value) if value else None
