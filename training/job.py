"""One training job: contract -> data, base model -> tokenize -> train -> evaluate -> artifact.

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
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.base_model import load_base_model, resolve_base_model
from training.batching import EncodedSplit, encode
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
from training.errors import DataError, JobError
from training.hyperparameters import Hyperparameters, parse_hyperparameters
from training.job_reports import (
    JobData,
    artifact_info,
    test_metric_line,
    training_summary,
    write_data_reports,
    write_json,
)
from training.sagemaker_env import SageMakerEnv, write_failure

if TYPE_CHECKING:
    from training.data import Example
    from training.train import TrainResult

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOPPED = 128 + signal.SIGTERM
DATA_CHANNELS = ("train", "validation", "test")
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
        result = train_and_save(env, hp, ctx, stop)
        if result.interrupted:
            _fail(
                env,
                ctx,
                f"stopped by {stop.signal_name or 'a signal'} at step {result.state.step}; a "
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
) -> TrainResult:
    """The job proper, on every rank: load -> tokenize -> train -> evaluate -> save.

    Rank 0 alone writes the reports and the model. Returns the loop's result; when it was
    interrupted (``stop``), nothing after training runs.
    """
    import torch

    from model_artifact import save_artifact
    from training.evaluate import predict, write_test_report
    from training.train import MetricsLog, fine_tune

    started = time.monotonic()
    out_dir = env.output_data_dir
    if ctx.is_main and latest_checkpoint(env.checkpoint_dir) is None:
        # A fresh start; a resumed job appends to the lines written before the interruption.
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)
    metrics = MetricsLog(out_dir / "metrics.jsonl", enabled=ctx.is_main)

    # -- load: the data, then the base model with our labels --------------------------------
    data = _load_data(env, hp)
    base = resolve_base_model(env.channels(), hp.model_name_or_path)
    # Seed before the classifier head is created: its initial weights are part of the run.
    random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    tokenizer, model, labels = load_base_model(base, hp.max_length)
    if tuple(data.splits.labels) != labels:
        raise DataError(f"the data's labels {data.splits.labels} differ from the model's {labels}")
    baseline = None
    if ctx.is_main:
        baseline = write_data_reports(
            out_dir, data, hp, tokenizer=tokenizer, tokenizer_name=base.name
        )

    # -- tokenize ---------------------------------------------------------------------------
    label_to_id = {label: i for i, label in enumerate(labels)}

    def tokenize(rows: list[Example]) -> EncodedSplit:
        texts, label_ids = [row.text for row in rows], [label_to_id[row.label] for row in rows]
        return encode(texts, label_ids, tokenizer, hp.max_length)

    train = tokenize(data.train_rows)
    validation = tokenize(data.validation_rows)
    test = tokenize(data.splits.test)
    pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    # -- train ------------------------------------------------------------------------------
    result = fine_tune(
        model,
        train,
        validation,
        labels,
        hp,
        ctx=ctx,
        pad_token_id=pad_token_id,
        checkpoint_dir=env.checkpoint_dir,
        fingerprint=_fingerprint(hp, ctx.world_size, data.sha256, base.name),
        stop=stop,
        metrics=metrics,
    )
    if result.interrupted:
        return result

    # -- evaluate on the test split, in the precision the loop ran in -----------------------
    predictions = predict(
        model,
        test,
        batch_size=hp.eval_batch_size,
        pad_token_id=pad_token_id,
        precision=result.precision_used,
        ctx=ctx,
    )
    if ctx.is_main:
        evaluation = write_test_report(
            out_dir,
            examples=data.splits.test,
            predictions=predictions,
            labels=labels,
            baseline=baseline,
            validation=result.state.best_validation,
            misclassified_limit=hp.misclassified_examples,
        )
        test_report = evaluation["test"]
        metrics.write("test", test_metric_line(result.state.step, test_report, baseline))

        # -- save: reports, then the artifact (all or nothing), then its ONNX files ---------
        summary = training_summary(
            result, train_rows=len(train), ctx=ctx, job_seconds=time.monotonic() - started
        )
        write_json(out_dir / "training_summary.json", summary)
        info = artifact_info(
            labels=labels,
            hp=hp,
            base_name=base.name,
            job_name=env.job_name,
            data=data,
            test_report=test_report,
            baseline=baseline,
            result=result,
            summary=summary,
        )
        model.to("cpu")
        save_artifact(model, tokenizer, info, env.model_dir)
        log.info("model artifact written to %s", env.model_dir)
        if hp.export_onnx:
            _export_onnx(
                env.model_dir,
                [row.text for row in data.splits.test],
                [label_to_id[row.label] for row in data.splits.test],
            )
    barrier(ctx)
    return result


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


def _load_data(env: SageMakerEnv, hp: Hyperparameters) -> JobData:
    """The job's splits from its data channels, and the rows its budgets keep of them."""
    from training.data import load_datasets

    channels = env.channels()
    missing = [name for name in env.declared_channels() if name not in channels]
    if missing:
        raise DataError(
            f"channel(s) {missing} are declared in inputdataconfig.json but "
            f"{env.data_dir} has no folder for them: check the input channels' S3 URIs"
        )
    splits, summary = load_datasets(
        {name: path for name, path in channels.items() if name in DATA_CHANNELS},
        seed=hp.seed,
        validation_fraction=hp.validation_fraction,
        test_fraction=hp.test_fraction,
        split=hp.split,
    )
    return JobData(
        splits=splits,
        summary=summary,
        train_rows=_row_budget(splits.train, hp.max_train_rows, hp.seed),
        validation_rows=_row_budget(splits.validation, hp.max_eval_rows, hp.seed),
    )


def _row_budget(rows: list[Example], budget: int | None, seed: int) -> list[Example]:
    """A seeded random subset of ``budget`` rows (all rows when the budget is larger)."""
    if budget is None or budget >= len(rows):
        return rows
    return random.Random(seed).sample(rows, budget)


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
