"""One training job: contract -> data -> base model -> fine-tune -> evaluate -> artifact.

:func:`run` is what ``python -m training`` calls. Every failure ends in ``output/failure``
(what went wrong and what to do) and a non-zero exit; the model directory is written only at
the very end, all or nothing, by :func:`model_artifact.save_artifact`, and then gets its
``model.onnx`` (``export_onnx``; a model that cannot be exported keeps the artifact without it).

Exit codes: 0 done; 1 failed (reason in output/failure); 143 stopped by SIGTERM after a
checkpoint (a restarted job resumes from it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import signal
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.checkpoint import StopSignal, latest_checkpoint
from training.distributed import (
    DistContext,
    barrier,
    init_distributed,
    is_worker,
    launch,
    plan_launch,
    shutdown,
)
from training.errors import DataError, HyperparameterError, JobError, ModelLoadError
from training.hyperparameters import Hyperparameters, parse_hyperparameters
from training.sagemaker_env import SageMakerEnv, write_failure

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from training.data import DataSummary, Example, Splits

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOPPED = 128 + signal.SIGTERM
DATA_CHANNELS = ("train", "validation", "test")
PRETRAINED_CHANNEL = "pretrained"
# Knobs that change neither the data nor the trajectory: a resumed job may change them.
RESUME_NEUTRAL = frozenset(
    {
        "checkpoint_steps",
        "logging_steps",
        "run_baseline",
        "eda",
        "misclassified_examples",
        "eval_batch_size",
        "num_processes",
    }
)


@dataclass(frozen=True)
class Outcome:
    interrupted: bool
    step: int


def run(env: SageMakerEnv, worker_args: list[str]) -> int:
    """Run the job described by ``env``; return the process exit code.

    ``worker_args`` is what torchrun starts in each worker (``["-m", "training", "train"]``).
    """
    worker = is_worker(env.environ)
    if not worker:
        env.failure_file.unlink(missing_ok=True)  # a retried job starts with a clean slate
    stop = StopSignal()
    previous = signal.getsignal(signal.SIGTERM)
    ctx: DistContext | None = None
    try:
        hp = parse_hyperparameters(env.hyperparameters())
        if not worker:
            plan = plan_launch(env.cluster(), hp.num_processes, env.environ)
            if plan.world_size > 1:
                code = launch(plan, worker_args, env.environ)
                if code != 0 and not env.failure_file.exists():
                    write_failure(
                        env.failure_file,
                        f"a training process exited with code {code}; the job's logs hold "
                        "the first failing rank's traceback",
                    )
                return code
        stop.install(signal.SIGTERM)
        ctx = init_distributed(env.environ)
        outcome = train_and_save(env, hp, ctx, stop)
        if outcome.interrupted:
            _fail(
                env,
                ctx,
                f"stopped by {stop.signal_name or 'a signal'} at step {outcome.step}; a "
                f"checkpoint was saved in {env.checkpoint_dir}. Restart the job with the same "
                "hyperparameters and checkpoint location to resume.",
            )
            return EXIT_STOPPED
        return EXIT_OK
    except JobError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        _fail(env, ctx, f"{type(exc).__name__}: {exc}")
    except MemoryError:
        log.exception("out of memory")
        _fail(env, ctx, _out_of_memory_message("host memory"))
    except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not _is_out_of_memory(exc):
            log.exception("training failed")
            _fail(env, ctx, _internal_error_message(exc))
        else:
            log.exception("out of memory")
            _fail(env, ctx, _out_of_memory_message(_memory_kind(exc)))
    except Exception as exc:  # anything else is a bug: say so, log the traceback
        log.exception("training failed")
        _fail(env, ctx, _internal_error_message(exc))
    finally:
        if ctx is not None:
            shutdown(ctx)
        signal.signal(signal.SIGTERM, previous)
    return EXIT_FAILED


def train_and_save(
    env: SageMakerEnv, hp: Hyperparameters, ctx: DistContext, stop: StopSignal
) -> Outcome:
    """The job proper, on every rank; rank 0 alone writes reports and the model."""
    import torch

    from model_artifact import ArtifactInfo, save_artifact
    from training.batching import encode
    from training.evaluate import predict, write_test_report
    from training.precision import choose_precision
    from training.train import MetricsLog, fine_tune

    started = time.monotonic()
    out_dir = env.output_data_dir
    metrics = MetricsLog(out_dir / "metrics.jsonl", enabled=ctx.is_main)
    if ctx.is_main and latest_checkpoint(env.checkpoint_dir) is None:
        # A fresh start; a resumed job appends to the lines written before the interruption.
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)
    channels = _data_channels(env)

    # Seed before the classifier head is created: its initial weights are part of the run.
    random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    base_path, base_name = _resolve_base_model(env, hp)
    tokenizer, model, labels = _load_base_model(base_path, base_name, hp)
    splits, summary = _load_data(channels, hp)
    data_sha256 = hashlib.sha256(
        json.dumps(summary.sources, sort_keys=True).encode("utf-8")
    ).hexdigest()
    if tuple(splits.labels) != labels:
        raise DataError(f"the data's labels {splits.labels} differ from the model's {labels}")
    train_rows = _row_budget(splits.train, hp.max_train_rows, hp.seed)
    validation_rows = _row_budget(splits.validation, hp.max_eval_rows, hp.seed)

    baseline = None
    if ctx.is_main:
        _write_json(
            out_dir / "data_summary.json",
            {
                **summary.to_dict(),
                "split": splits.method,
                "data_sha256": data_sha256,
                "rows_used": {
                    "train": len(train_rows),
                    "validation": len(validation_rows),
                    "test": len(splits.test),
                },
            },
        )
        if hp.eda:
            from training.eda import write_eda_report

            # The base model's own tokenizer, also when it came from the Hub.
            write_eda_report(
                splits,
                out_dir / "eda",
                tokenizer=tokenizer,
                tokenizer_name=base_name,
                max_length=hp.max_length,
                summary=summary,
            )
        if hp.run_baseline:
            from training.baseline import run_baseline, write_baseline

            baseline = run_baseline(splits, seed=hp.seed)
            write_baseline(baseline, out_dir)

    label_to_id = {label: i for i, label in enumerate(labels)}

    def encode_rows(rows: list[Example]) -> Any:
        return encode(
            [row.text for row in rows],
            [label_to_id[row.label] for row in rows],
            tokenizer,
            hp.max_length,
        )

    train, validation, test = map(encode_rows, (train_rows, validation_rows, splits.test))
    pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    fingerprint = _fingerprint(hp, ctx.world_size, data_sha256, base_name)
    result = fine_tune(
        model,
        train,
        validation,
        labels,
        hp,
        ctx=ctx,
        pad_token_id=pad_token_id,
        checkpoint_dir=env.checkpoint_dir,
        fingerprint=fingerprint,
        stop=stop,
        metrics=metrics,
    )
    if result.interrupted:
        return Outcome(interrupted=True, step=result.state.step)

    predictions = predict(
        model,
        test,
        batch_size=hp.eval_batch_size,
        pad_token_id=pad_token_id,
        precision=choose_precision(hp.precision, ctx.device),
        ctx=ctx,
    )
    if ctx.is_main:
        evaluation = write_test_report(
            out_dir,
            examples=splits.test,
            predictions=predictions,
            labels=labels,
            baseline=baseline,
            validation=result.state.best_validation,
            misclassified_limit=hp.misclassified_examples,
        )
        test_report = evaluation["test"]
        line: dict[str, float | int] = {
            "step": result.state.step,
            "test_accuracy": test_report["accuracy"],
            "test_macro_f1": test_report["macro_f1"],
        }
        if baseline:
            line["baseline_test_macro_f1"] = baseline["test"]["macro_f1"]
        metrics.write("test", line)
        training_summary = {
            "steps": result.state.step,
            "planned_steps": result.total_steps,
            "epochs": round(result.state.samples / max(len(train), 1), 3),
            "best_step": result.state.best_step,
            "stopped_early": result.state.stopped_early,
            "resumed_from": result.resumed_from,
            "train_seconds": round(result.state.train_seconds, 2),
            "train_samples_per_second": round(result.samples_per_second, 2),
            "precision": result.precision,
            "world_size": ctx.world_size,
            "device": str(ctx.device),
            "job_seconds": round(time.monotonic() - started, 2),
        }
        _write_json(out_dir / "training_summary.json", training_summary)
        info = ArtifactInfo(
            labels=labels,
            max_length=hp.max_length,
            base_model=base_name,
            metadata={
                "job_name": env.job_name,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_sha256": data_sha256,
                "data_sources": summary.sources,
                "split": splits.method,
                "rows": {
                    "train": len(train_rows),
                    "validation": len(validation_rows),
                    "test": len(splits.test),
                },
                "metrics": {
                    "test_accuracy": test_report["accuracy"],
                    "test_macro_f1": test_report["macro_f1"],
                    "validation_macro_f1": result.state.best_macro_f1,
                    "baseline_test_macro_f1": baseline["test"]["macro_f1"] if baseline else None,
                },
                "training": training_summary,
                "hyperparameters": hp.to_dict(),
                "versions": _versions(),
            },
        )
        model.to("cpu")
        save_artifact(model, tokenizer, info, env.model_dir)
        log.info("model artifact written to %s", env.model_dir)
        if hp.export_onnx:
            _export_onnx(
                env.model_dir,
                [row.text for row in splits.test],
                [label_to_id[row.label] for row in splits.test],
            )
    barrier(ctx)
    return Outcome(interrupted=False, step=result.state.step)


def _export_onnx(model_dir: Path, test_texts: list[str], test_labels: list[int]) -> None:
    """Add model.onnx and its faster variants (checked against it on the test split) to the
    finished artifact; without them the server runs PyTorch or fp32 ONNX, so a model the
    exporter cannot handle costs speed on CPUs, not the job."""
    from model_artifact import ArtifactError
    from model_artifact.onnx import export_onnx
    from model_artifact.variants import LabelledTexts, build_variants

    try:
        export_onnx(model_dir)  # logs what it wrote
    except ArtifactError as exc:  # OnnxExportError included
        log.warning("no model.onnx in the artifact (the server will run PyTorch): %s", exc)
        return
    try:  # each variant that fails is a warning of its own
        build_variants(model_dir, LabelledTexts(test_texts, test_labels))
    except ArtifactError as exc:
        log.warning("no faster ONNX variants in the artifact: %s", exc)


# -- inputs -----------------------------------------------------------------------------------


def _data_channels(env: SageMakerEnv) -> dict[str, Path]:
    channels = env.channels()
    missing = [name for name in env.declared_channels() if name not in channels]
    if missing:
        raise DataError(
            f"channel(s) {missing} are declared in inputdataconfig.json but "
            f"{env.data_dir} has no folder for them: check the input channels' S3 URIs"
        )
    if "train" not in channels:
        raise DataError(
            "no 'train' input channel: give the UCI newsCorpora.csv (or .csv.xz/.zip) as the "
            f"'train' channel (found: {sorted(channels) or 'none'} under {env.data_dir})"
        )
    return {name: path for name, path in channels.items() if name in DATA_CHANNELS}


def _load_data(channels: dict[str, Path], hp: Hyperparameters) -> tuple[Splits, DataSummary]:
    from training.data import load_datasets

    return load_datasets(
        channels,
        seed=hp.seed,
        validation_fraction=hp.validation_fraction,
        test_fraction=hp.test_fraction,
        split=hp.split,
    )


def _row_budget(rows: list[Example], budget: int | None, seed: int) -> list[Example]:
    """A seeded random subset of ``budget`` rows (all rows when the budget is larger)."""
    if budget is None or budget >= len(rows):
        return rows
    return random.Random(seed).sample(rows, budget)


def _resolve_base_model(env: SageMakerEnv, hp: Hyperparameters) -> tuple[Path, str]:
    """``(path or hub id as a Path, name for the metadata)``; the pretrained channel wins."""
    channel = env.channels().get(PRETRAINED_CHANNEL)
    if channel is not None:
        model_dir = _find_model_dir(channel)
        log.info("base model from the '%s' channel: %s", PRETRAINED_CHANNEL, model_dir)
        name = _config_name(model_dir) or f"{PRETRAINED_CHANNEL} channel"
        return model_dir, name
    name = hp.model_name_or_path
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", ".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise ModelLoadError(
            f"the base model path {name!r} (hyperparameter model_name_or_path) does not exist "
            "or is not a directory: give a saved model directory, a Hub id, or a "
            f"'{PRETRAINED_CHANNEL}' input channel"
        )
    return path, name


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


def _load_base_model(
    path: Path, name: str, hp: Hyperparameters
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, tuple[str, ...]]:
    """Tokenizer and a classifier with our labels; a Hub id needs network (or the HF cache)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from training.data import LABELS

    hf_logging.disable_progress_bar()
    source = str(path) if path.is_dir() else name
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
            f"cannot load the base model {name!r}: {exc}. Give a local model directory or a "
            f"'{PRETRAINED_CHANNEL}' channel when the job has no internet access (network "
            "isolation), or check the Hub id."
        ) from exc
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and hp.max_length > limit:
        raise HyperparameterError(
            f"hyperparameter 'max_length' ({hp.max_length}) exceeds what {name!r} supports "
            f"({limit} positions): lower it"
        )
    return tokenizer, model, tuple(LABELS)


def _fingerprint(hp: Hyperparameters, world_size: int, data_sha256: str, base: str) -> str:
    """What a checkpoint must match to be resumed: same data, model, knobs and world size."""
    relevant = {k: v for k, v in hp.to_dict().items() if k not in RESUME_NEUTRAL}
    payload = {"hp": relevant, "world_size": world_size, "data": data_sha256, "base": base}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


# -- failures ---------------------------------------------------------------------------------


def _fail(env: SageMakerEnv, ctx: DistContext | None, message: str) -> None:
    """Rank 0 (or the launcher) writes the reason; other ranks only log it."""
    if ctx is None or ctx.is_main:
        write_failure(env.failure_file, message)
    _remove_partial_model(env.model_dir)


def _remove_partial_model(model_dir: Path) -> None:
    # save_artifact stages inside model_dir; a crash mid-save can leave only its staging folder.
    for staging in model_dir.glob(".staging-*") if model_dir.is_dir() else ():
        shutil.rmtree(staging, ignore_errors=True)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return (
        isinstance(exc, torch.OutOfMemoryError)
        or "out of memory" in text
        or ("can't allocate memory" in text)
    )


def _memory_kind(exc: BaseException) -> str:
    # torch raises OutOfMemoryError for accelerator memory only; the CPU allocator's failure
    # is a plain RuntimeError ("can't allocate memory").
    import torch

    return "GPU memory" if isinstance(exc, torch.OutOfMemoryError) else "host memory"


def _out_of_memory_message(what: str) -> str:
    return (
        f"OutOfMemory: the job ran out of {what}. Lower batch_size (and raise "
        "gradient_accumulation_steps to keep the effective batch), lower max_length or "
        "eval_batch_size, or use an instance type with more memory."
    )


def _internal_error_message(exc: BaseException) -> str:
    return (
        f"internal error: {type(exc).__name__}: {str(exc)[:600]}. This is a bug, not a "
        "problem with your input; the traceback is in the job's logs."
    )


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}
