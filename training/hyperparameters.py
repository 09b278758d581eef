"""The hyperparameters of a training job: one validated object, built once at start-up.

Every knob is listed once, with its default and a one-line reason; docs/training.md has the
same table. Values arrive as strings from hyperparameters.json (see
:func:`training.sagemaker_env.decode_hyperparameter`); pydantic turns them into typed fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from training.data import check_split_options
from training.errors import HyperparameterError


class Hyperparameters(BaseModel):
    """What a training job can be told, read from hyperparameters.json."""

    # No NaN or infinity anywhere: learning_rate=Infinity would train "successfully" into an
    # all-NaN model. Every count has an upper bound, so a typo cannot ask for 5 GB batches.
    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, allow_inf_nan=False
    )

    # -- the model ----------------------------------------------------------------------------
    model_name_or_path: str = Field(
        default="distilbert-base-uncased",
        max_length=1024,
        description="Hub id or local path of the base model; a `pretrained` channel overrides it",
    )
    max_length: int = Field(
        default=128, ge=8, le=8192, description="truncate headlines to this many tokens"
    )
    # -- how long -----------------------------------------------------------------------------
    epochs: int = Field(default=3, ge=1, le=1000, description="passes over the training split")
    max_steps: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="optimizer steps to run; overrides epochs when set",
    )
    max_train_rows: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="row budget: train on a seeded random subset of this many rows",
    )
    # -- the optimizer ------------------------------------------------------------------------
    batch_size: int = Field(
        default=32, ge=1, le=4096, description="examples per process per micro-batch"
    )
    gradient_accumulation_steps: int = Field(
        default=1,
        ge=1,
        le=4096,
        description="micro-batches per optimizer step (effective batch = product)",
    )
    learning_rate: float = Field(default=5e-5, gt=0, le=1.0, description="AdamW peak learning rate")
    weight_decay: float = Field(
        default=0.01, ge=0, le=10.0, description="AdamW decay; not applied to biases/norms"
    )
    warmup_ratio: float = Field(
        default=0.06,
        ge=0,
        lt=1,
        description="share of steps with linear warm-up, then linear decay to 0",
    )
    max_grad_norm: float = Field(
        default=1.0, ge=0, le=1e6, description="gradient clipping norm; 0 turns it off"
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto",
        description="auto: bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU",
    )
    seed: int = Field(
        default=42,
        ge=0,
        le=2**32 - 1,
        description="seeds splits, sampling, initialisation, dropout",
    )
    # -- batching -----------------------------------------------------------------------------
    group_by_length: bool = Field(
        default=True, description="batch headlines of similar length together (less padding)"
    )
    pad_to_max_length: bool = Field(
        default=False, description="pad every batch to max_length (slow; for benchmarks only)"
    )
    # -- evaluation and stopping --------------------------------------------------------------
    eval_steps: int = Field(
        default=0,
        ge=0,
        le=100_000_000,
        description="also evaluate every N steps; 0: each epoch only",
    )
    eval_batch_size: int = Field(
        default=128, ge=1, le=4096, description="examples per process per eval batch"
    )
    max_eval_rows: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="validate on a seeded subset of this many rows (speed)",
    )
    early_stopping_patience: int = Field(
        default=3,
        ge=0,
        le=10_000,
        description="stop after N evaluations without a better macro-F1; 0: never",
    )
    logging_steps: int = Field(
        default=50, ge=1, le=100_000_000, description="print a train metric line every N steps"
    )
    # -- checkpoints --------------------------------------------------------------------------
    checkpoint_steps: int = Field(
        default=500,
        ge=0,
        le=100_000_000,
        description="checkpoint every N steps (and on SIGTERM); 0: on SIGTERM only",
    )
    # -- data ---------------------------------------------------------------------------------
    split: Literal["story", "random"] = Field(
        default="story",
        description="story: whole STORY clusters per split (no near-duplicate leaks)",
    )
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="share of rows for validation"
    )
    test_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="share of rows for the test split"
    )
    # -- reports ------------------------------------------------------------------------------
    run_baseline: bool = Field(
        default=True, description="fit the TF-IDF baseline and report it alongside"
    )
    eda: bool = Field(
        default=True, description="write the exploratory data report to output/data/eda"
    )
    misclassified_examples: int = Field(
        default=25,
        ge=0,
        le=10_000,
        description="test headlines the model got wrong, kept in the report",
    )
    # -- artifact -----------------------------------------------------------------------------
    export_onnx: bool = Field(
        default=True,
        description="add model.onnx to the artifact for the server's ONNX Runtime CPU path",
    )
    # -- processes ----------------------------------------------------------------------------
    num_processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="processes per host; default one per GPU, or 1 without GPUs",
    )

    @field_validator("max_steps", "max_train_rows", "max_eval_rows", "num_processes", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        # "None" (Python clients) and "" (consoles) mean "not set", like JSON null.
        if isinstance(value, str) and value.strip().lower() in {"", "none", "null"}:
            return None
        return value

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> Hyperparameters:
        # The data package holds the one rule for split options (training.data.splitting).
        try:
            check_split_options(self.validation_fraction, self.test_fraction, self.split)
        except HyperparameterError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_hyperparameters(raw: Mapping[str, Any]) -> Hyperparameters:
    """Validate decoded hyperparameters; the error names the offending key and what it expects."""
    known = set(Hyperparameters.model_fields)
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise HyperparameterError(
                f"unknown hyperparameter {_excerpt(key)}.{hint} Known: {', '.join(sorted(known))}."
            )
    try:
        return Hyperparameters.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "hyperparameters"
            given = f" (got {_excerpt(raw[name])})" if name in raw else ""
            problems.append(f"hyperparameter {name!r}{given}: {error['msg']}")
        raise HyperparameterError(
            "; ".join(problems) + ". Fix the value in the job's hyperparameters."
        ) from exc


def _excerpt(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it, cut short: a 2,500-character value must not fill the
    failure file (of which SageMaker shows 1,024 characters)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"
