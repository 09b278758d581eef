"""The fine-tuning loop: plain PyTorch, top to bottom.

    batches (length-grouped, dynamically padded) -> forward under autocast -> loss / accumulation
    -> backward (DDP all-reduces on the last micro-batch) -> clip -> AdamW -> warmup/linear decay
    -> every N steps / each epoch: validate, keep the best macro-F1, maybe stop early
    -> every N steps / on SIGTERM: checkpoint (resume reproduces the uninterrupted run)

On CPU the run is bit-for-bit reproducible from ``seed``: the batch order depends only on
``(seed, epoch)``, dropout only on torch's RNG, which checkpoints carry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.batching import EncodedSplit, collate, epoch_batches
from training.checkpoint import StopSignal, latest_checkpoint, load_checkpoint, save_checkpoint
from training.distributed import DistContext, all_gather, any_rank
from training.errors import JobError
from training.evaluate import predict
from training.hyperparameters import Hyperparameters
from training.precision import Precision, choose_precision
from training.sagemaker_env import format_metric_line

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)


class MetricsLog:
    """Metric lines on stdout for SageMaker's regexes, and the same as JSON lines in a file."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, split: str, values: dict[str, float | int]) -> None:
        if not self.enabled:
            return
        log.info(format_metric_line(values))
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"split": split, **values}) + "\n")


@dataclass
class TrainerState:
    """Where the loop is; saved in every checkpoint next to the tensors."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # this rank's micro-batches of the current epoch already trained on
    best_macro_f1: float = -1.0
    best_step: int = 0
    evals_without_improvement: int = 0
    samples: int = 0  # training examples seen, all ranks together
    train_seconds: float = 0.0  # time in training steps, without evaluation and checkpoints
    stopped_early: bool = False
    best_validation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """How a run of the loop ended: the one result of a training job (``training.job``)."""

    state: TrainerState
    total_steps: int
    interrupted: bool
    # Chosen once, from the precision hyperparameter and the device, for training and
    # evaluation alike.
    precision_used: Precision
    resumed_from: str | None

    @property
    def precision(self) -> str:
        """The precision's name ("bf16", "fp16" or "fp32"), as reports print it."""
        return self.precision_used.name

    @property
    def samples_per_second(self) -> float:
        return self.state.samples / self.state.train_seconds if self.state.train_seconds else 0.0


def fine_tune(
    model: PreTrainedModel,
    train: EncodedSplit,
    validation: EncodedSplit,
    labels: Sequence[str],
    hp: Hyperparameters,
    *,
    ctx: DistContext,
    pad_token_id: int,
    checkpoint_dir: Path | None,
    fingerprint: str,
    stop: StopSignal,
    metrics: MetricsLog,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation macro-F1.

    Returns early with ``interrupted=True`` after checkpointing when ``stop`` is requested.
    """
    import torch
    from torch.nn import functional
    from torch.nn.parallel import DistributedDataParallel
    from transformers import get_linear_schedule_with_warmup

    from training.metrics import classification_report

    # -- setup --------------------------------------------------------------------------------
    device = ctx.device
    precision = choose_precision(hp.precision, device)
    model.to(device)
    model.train()
    ddp = None
    if ctx.distributed:
        ddp = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    net: torch.nn.Module = ddp or model
    lengths = train.lengths()
    pad_to = hp.max_length if hp.pad_to_max_length else None

    def batches_for(epoch: int) -> list[list[int]]:
        return epoch_batches(
            lengths,
            hp.batch_size,
            seed=hp.seed,
            epoch=epoch,
            group_by_length=hp.group_by_length,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )

    batches_per_epoch = len(batches_for(0))
    if batches_per_epoch == 0:
        raise JobError(
            f"the training split ({len(train)} rows) gives no batch to each of "
            f"{ctx.world_size} processes at batch_size={hp.batch_size}: use more data, a "
            "smaller batch_size or fewer processes"
        )
    accum = hp.gradient_accumulation_steps
    steps_per_epoch = math.ceil(batches_per_epoch / accum)
    total_steps = hp.max_steps or hp.epochs * steps_per_epoch
    warmup_steps = math.ceil(hp.warmup_ratio * total_steps)
    # No weight decay on biases and LayerNorm weights (the 1-D tensors), as in BERT.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": hp.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    # Fused AdamW is one kernel per step on GPUs; the CPU keeps the default for speed parity.
    optimizer = torch.optim.AdamW(groups, lr=hp.learning_rate, fused=device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
    state = TrainerState()
    best_weights: dict[str, torch.Tensor] | None = None

    # -- resume -------------------------------------------------------------------------------
    resumed_from = None
    newest = latest_checkpoint(checkpoint_dir) if checkpoint_dir else None
    if newest is not None:
        saved, saved_state = load_checkpoint(newest)
        if saved_state.get("fingerprint") != fingerprint:
            raise JobError(
                f"the checkpoint {newest} comes from a job with other hyperparameters, data "
                "or number of processes; restore those, or clear the checkpoint location "
                "(checkpoint_s3_uri) to start from scratch"
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        best_weights = saved["best_weights"]
        state = TrainerState(**saved_state["trainer"])
        _set_rng_state(saved["rng"][ctx.rank])
        resumed_from = str(newest)
        log.info("resumed from %s at step %d of %d", newest, state.step, total_steps)

    log.info(
        "training: %d rows, %d steps (%d per epoch), %d processes x batch %d x accumulation %d, "
        "%s on %s",
        len(train),
        total_steps,
        steps_per_epoch,
        ctx.world_size,
        hp.batch_size,
        accum,
        precision.name,
        device,
    )

    def validate() -> None:
        preds = predict(
            model,
            validation,
            batch_size=hp.eval_batch_size,
            pad_token_id=pad_token_id,
            precision=precision,
            ctx=ctx,
        )
        report = classification_report(
            [labels[i] for i in validation.labels], [labels[i] for i in preds.label_ids], labels
        )
        nonlocal best_weights
        if report["macro_f1"] > state.best_macro_f1:
            state.best_macro_f1, state.best_step = report["macro_f1"], state.step
            state.evals_without_improvement = 0
            state.best_validation = {**report, "loss": preds.loss, "step": state.step}
            best_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
        else:
            state.evals_without_improvement += 1
        metrics.write(
            "validation",
            {
                "step": state.step,
                "epoch": round(state.step / steps_per_epoch, 4),
                "validation_loss": preds.loss,
                "validation_accuracy": report["accuracy"],
                "validation_macro_f1": report["macro_f1"],
            },
        )

    def checkpoint() -> None:
        rng = all_gather(_rng_state(), ctx)  # every rank's dropout RNG, saved by rank 0
        if ctx.is_main and checkpoint_dir is not None:
            path = save_checkpoint(
                checkpoint_dir,
                state.step,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "best_weights": best_weights,
                    "rng": rng,
                },
                {"fingerprint": fingerprint, "trainer": asdict(state)},
            )
            log.info("checkpoint: %s", path)

    # -- the loop -----------------------------------------------------------------------------
    interrupted = False
    window_loss = torch.zeros((), device=device)  # sum of micro-batch losses since the last log
    window_batches = 0
    done = state.step >= total_steps or state.stopped_early
    while not done:
        batches = batches_for(state.epoch)
        for micro in range(state.batch_in_epoch, len(batches)):
            started = time.perf_counter()
            batch = collate(train, batches[micro], pad_token_id, pad_to=pad_to)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            # The last accumulation group of an epoch may be short: average over what it has.
            group_start = micro - micro % accum
            group_size = min(accum, len(batches) - group_start)
            last_of_group = micro == group_start + group_size - 1
            # DDP all-reduces gradients only on the group's last micro-batch.
            sync = ddp.no_sync() if ddp and not last_of_group else contextlib.nullcontext()
            with sync:
                with precision.autocast():
                    logits = net(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    ).logits  # (B, C)
                loss = functional.cross_entropy(logits.float(), batch["labels"])  # ()
                scaler.scale(loss / group_size).backward()
            window_loss += loss.detach()
            window_batches += 1
            state.batch_in_epoch = micro + 1
            state.samples += len(batches[micro]) * ctx.world_size
            if not last_of_group:
                state.train_seconds += time.perf_counter() - started
                continue

            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if hp.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # honest step times
            state.train_seconds += time.perf_counter() - started

            epoch_end = micro + 1 == len(batches)
            if state.step % hp.logging_steps == 0 or state.step == total_steps:
                train_loss = (window_loss / window_batches).item()
                _require_finite_loss(train_loss, state.step, hp)
                metrics.write(
                    "train",
                    {
                        "step": state.step,
                        "epoch": round(state.step / steps_per_epoch, 4),
                        "train_loss": train_loss,
                        "learning_rate": scheduler.get_last_lr()[0],
                        "samples_per_second": state.samples / max(state.train_seconds, 1e-9),
                    },
                )
                window_loss.zero_()
                window_batches = 0
            evaluate_now = hp.eval_steps > 0 and state.step % hp.eval_steps == 0
            if evaluate_now or epoch_end or state.step == total_steps:
                validate()
                patience = hp.early_stopping_patience
                if patience and state.evals_without_improvement >= patience:
                    state.stopped_early = True
                    log.info("early stopping: %d evaluations without a better macro-F1", patience)
            done = state.step >= total_steps or state.stopped_early
            stopping = any_rank(stop.requested, ctx)
            periodic = hp.checkpoint_steps > 0 and state.step % hp.checkpoint_steps == 0
            if stopping or (periodic and not done):
                checkpoint()
            if stopping:
                interrupted = True
                done = True
            if done:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0

    if not interrupted and best_weights is not None:
        model.load_state_dict(best_weights)
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        # The loss is checked at every log line; weights can still break in the last steps.
        raise JobError(_DIVERGED.format(what="the model's weights", hp=hp))
    return TrainResult(
        state=state,
        total_steps=total_steps,
        interrupted=interrupted,
        precision_used=precision,
        resumed_from=resumed_from,
    )


_DIVERGED = (
    "training diverged: {what} became NaN or infinite. No model was saved. Lower "
    "learning_rate (it was {hp.learning_rate:g}), keep max_grad_norm above 0 (it was "
    "{hp.max_grad_norm:g}), or use precision=fp32, then run the job again."
)


def _require_finite_loss(loss: float, step: int, hp: Hyperparameters) -> None:
    """A NaN or infinite training loss fails the job (failure file, no model) instead of
    training on into an all-NaN model that the server would load."""
    if not math.isfinite(loss):
        raise JobError(_DIVERGED.format(what=f"the training loss (at step {step})", hp=hp))


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
