"""The classifier: one model per process, loaded once from the artifact, run in inference mode.

Labels, tokenizer and max length come from the model artifact only (``model_artifact``);
nothing is downloaded. Two runtimes score a padded batch:

- PyTorch (:class:`TorchScorer`), on GPU in bf16 (fp16 where bf16 is not supported);
- ONNX Runtime (:class:`OnnxScorer`), on CPU when the artifact holds ``model.onnx``
  (``SERVE_RUNTIME=auto``): the whole forward pass is one native call, which on a small CPU
  has a far smaller fixed cost per call than PyTorch's op-by-op dispatch and holds the GIL
  only at its ends, so the event loop and the model stop taking turns, and several model
  threads run batches on the same session in parallel (:func:`resolve_threads`). Of the
  artifact's ONNX files (``model.onnx``, ``model.optimized.onnx``, ``model.int8.onnx``) it
  runs the fastest whose recorded accuracy check passes the configured threshold, or the one
  ``SERVE_ONNX_VARIANT`` forces (``model_artifact.variants.pick_variant``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from model_artifact import (
    ONNX_FILE,
    ONNX_VARIANT_FILES,
    ArtifactError,
    load_artifact,
    load_tokenizer,
)
from model_artifact.onnx import INPUT_NAMES
from model_artifact.variants import Threshold, pick_variant

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from app.settings import Settings

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Scorer(Protocol):
    """A runtime that turns a padded batch of token ids into logits (batch x labels)."""

    runtime: str

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


class TorchScorer:
    runtime = "torch"

    def __init__(self, model: PreTrainedModel, device: torch.device, threads: int | None) -> None:
        self.model = model
        self.device = device
        self.threads = threads

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        # OpenMP thread counts are per calling thread: set them where the model runs.
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.from_numpy(input_ids).to(self.device),
                attention_mask=torch.from_numpy(attention_mask).to(self.device),
            ).logits
            result: np.ndarray = logits.float().cpu().numpy()
        return result


class OnnxScorer:
    runtime = "onnx"

    def __init__(
        self, path: Path, threads: int | None, num_labels: int, variant: str = "fp32"
    ) -> None:
        import onnxruntime

        self.variant = variant
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads would otherwise spin on the cores the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings are not JSON
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        inputs = {node.name for node in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        if inputs != set(INPUT_NAMES) or outputs[0].shape[-1] != num_labels:
            raise ArtifactError(
                f"{path} takes {sorted(inputs)} and gives {outputs[0].shape}; the server needs "
                f"{' and '.join(INPUT_NAMES)} in and {num_labels} logits per text out. "
                "Re-export it with `python -m model_artifact.onnx`."
            )
        self._output = outputs[0].name

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = dict(zip(INPUT_NAMES, (input_ids, attention_mask), strict=True))
        result: np.ndarray = self.session.run([self._output], feeds)[0]
        return result


class Classifier:
    """Tokenizes texts (truncating at the artifact's max length) and scores padded batches."""

    def __init__(
        self,
        scorer: Scorer,
        tokenizer: PreTrainedTokenizerBase,
        labels: Sequence[str],
        max_length: int,
        *,
        pad_multiple: int = 1,
    ) -> None:
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.max_length = max_length
        pad_id = tokenizer.pad_token_id
        self._pad_id = int(pad_id) if pad_id is not None else 0
        self._pad_multiple = pad_multiple
        # What one call costs beyond its tokens, in tokens, and how many batches may run at
        # once (both set by load_classifier).
        self.call_overhead_tokens = 0.0
        self.model_threads = 1

    @property
    def runtime(self) -> str:
        return self.scorer.runtime

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def predict(self, batch: Sequence[Sequence[int]]) -> list[list[float]]:
        """Per-label logits of each sequence, padded to the longest in the batch; the answer
        turns them into scores as each request asks (``app.scoring``)."""
        longest = max(len(ids) for ids in batch)
        longest = -(-longest // self._pad_multiple) * self._pad_multiple
        input_ids = np.full((len(batch), longest), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        logits: list[list[float]] = self.scorer.logits(input_ids, attention_mask).tolist()
        return logits

    def warm_up(self, batch_size: int, max_batch_tokens: int) -> None:
        """Run the shapes serving will see once, so the first request pays no start-up cost,
        and refuse a model whose scores are not finite.

        The largest batch the batcher can form (max_length tokens each) runs too: the
        runtime's buffers reach their high-water mark here, so the memory the server needs
        is known when /ping turns 200, and no request raises it later."""
        ids = self._warm_up_ids()
        full = self.full_length_ids()
        largest = max(1, min(batch_size, max_batch_tokens // self.max_length))
        shapes = [[ids] * size for size in sorted({1, min(batch_size, 8), batch_size})]
        for batch in [*shapes, [full] * largest]:
            scores = self.predict(batch)
            if not np.isfinite(scores).all():
                # A diverged training run (NaN weights) would otherwise pass /ping and answer
                # every request with "score": null.
                raise ArtifactError(
                    "the model's scores on a warm-up text are not finite (NaN or infinity): "
                    "its weights are broken, e.g. by a diverged training run; retrain it"
                )

    def measure_call_overhead(self, batch_size: int) -> float:
        """Fit time = overhead + per_token x tokens through a 1-text and a larger call
        (median of 3 each); the overhead in tokens is what the batcher weighs against padding.
        On a GPU it comes out large (small batches are nearly free), on a CPU a few dozen."""
        ids = self._warm_up_ids()
        size = max(2, min(batch_size, 16))

        def seconds(batch: list[Sequence[int]]) -> float:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                self.predict(batch)
                times.append(time.perf_counter() - started)
            return sorted(times)[1]

        one, many = seconds([ids]), seconds([ids] * size)
        per_token = (many - one) / (len(ids) * (size - 1))
        if per_token <= 0:  # timer noise on an idle accelerator: batches are free
            return 1e6
        return min(1e6, max(0.0, one / per_token - len(ids)))

    def measure_throughput(self, batch_size: int) -> float:
        """Texts per second at the artifact's max length (the worst case), in batches of up
        to 16: what the default queue size and request limit are derived from."""
        batch = [self.full_length_ids()] * max(1, min(batch_size, 16))
        self.predict(batch)  # the first call of a new shape pays one-off costs
        started = time.perf_counter()
        self.predict(batch)
        return len(batch) / (time.perf_counter() - started)

    def full_length_ids(self) -> list[int]:
        """A text of exactly max_length tokens: the most one text can cost."""
        ids = self._warm_up_ids()
        return (ids * (self.max_length // len(ids) + 1))[: self.max_length]

    def _warm_up_ids(self) -> list[int]:
        return self.tokenize(["warm up the model before the first request"])[0]


# More model threads than this only split a CPU's queue into ever smaller batches; wider
# machines give each model thread more intra-op threads instead.
MAX_AUTO_MODEL_THREADS = 4


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask (``taskset``, cpusets), capped by a
    cgroup v2/v1 CPU quota rounded down (``docker --cpus``), at least 1. ``os.cpu_count``
    counts the host's CPUs, which in a container can be many more than it may use."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, int(quota))
    return max(1, count)


def _cgroup_cpu_quota() -> float | None:
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),  # v2: "<quota> <period>" or "max <period>"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            fields = Path(quota_file).read_text().split()
            if period_file is not None:
                fields.append(Path(period_file).read_text().strip())
        except OSError:
            continue
        if len(fields) < 2 or fields[0] in ("max", "-1"):
            return None
        return int(fields[0]) / int(fields[1])
    return None


def resolve_threads(
    settings: Settings, runtime: str, device: torch.device
) -> tuple[int, int | None]:
    """(model threads, intra-op threads of each; None: the runtime's own default, on a GPU).

    ONNX Runtime on a CPU: one model thread per usable CPU of this worker (at most
    :data:`MAX_AUTO_MODEL_THREADS`), one intra-op thread each, so under load every core runs
    a batch while the event loop takes its share between calls; a lone request still runs at
    once on one of them. PyTorch: one model thread (it takes the GIL between ops, so two would
    take turns with each other and the event loop) with the CPUs but one as intra-op threads."""
    cpus = max(1, usable_cpus() // settings.workers)
    if device.type != "cpu":
        return settings.model_threads or 1, None
    if runtime == "onnx":
        model_threads = settings.model_threads or min(cpus, MAX_AUTO_MODEL_THREADS)
        return model_threads, settings.torch_threads or max(1, cpus // model_threads)
    return settings.model_threads or 1, settings.torch_threads or max(1, cpus - 1)


def variant_threshold(settings: Settings) -> Threshold:
    """How far an ONNX variant may stray from fp32 and still be served by ``auto``
    (``SERVE_ONNX_MAX_F1_LOSS``, ``SERVE_ONNX_MAX_CHANGED_LABELS``)."""
    return Threshold(settings.onnx_max_f1_loss, settings.onnx_max_changed_labels)


def resolve_device(settings: Settings) -> tuple[torch.device, torch.dtype]:
    if settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    if settings.dtype != "auto":
        return device, _DTYPES[settings.dtype]
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def resolve_runtime(settings: Settings, device: torch.device) -> str:
    """``torch`` or ``onnx``: auto means ONNX Runtime on a CPU in fp32 when the artifact has
    ``model.onnx`` and onnxruntime is installed, PyTorch otherwise. (The one place that looks
    for ``model.onnx``: which variant of it runs is ``pick_variant``'s choice.)"""
    has_onnx = (Path(settings.model_dir) / ONNX_FILE).is_file()
    if settings.runtime == "onnx" and not has_onnx:
        raise ArtifactError(
            f"SERVE_RUNTIME=onnx, but {settings.model_dir} has no {ONNX_FILE}: add one with "
            f"`python -m model_artifact.onnx {settings.model_dir}`, or set SERVE_RUNTIME=auto"
        )
    if settings.runtime != "auto":
        return settings.runtime
    if device.type != "cpu" or settings.dtype not in ("auto", "float32") or not has_onnx:
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning("the artifact has %s but onnxruntime is not installed", ONNX_FILE)
        return "torch"
    return "onnx"


def load_classifier(settings: Settings) -> Classifier:
    """Load the artifact in ``settings.model_dir`` into the chosen runtime and warm it up."""
    started = time.monotonic()
    model_dir = Path(settings.model_dir)
    device, dtype = resolve_device(settings)
    runtime = resolve_runtime(settings, device)
    if runtime == "onnx":
        device, dtype = torch.device("cpu"), torch.float32
    model_threads, threads = resolve_threads(settings, runtime, device)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # progress bars would break the JSON logs
    scorer: Scorer
    if runtime == "onnx":
        tokenizer, info = load_tokenizer(model_dir)
        variant = pick_variant(model_dir, info, variant_threshold(settings), settings.onnx_variant)
        scorer = OnnxScorer(
            model_dir / ONNX_VARIANT_FILES[variant], threads, len(info.labels), variant
        )
    else:
        model, tokenizer, info = load_artifact(model_dir)
        scorer = TorchScorer(model.to(device=device, dtype=dtype).eval(), device, threads)
    classifier = Classifier(
        scorer,
        tokenizer,
        info.labels,
        info.max_length,
        # Tensor cores want multiples of 8; on CPU padding would only cost compute.
        pad_multiple=8 if device.type == "cuda" else 1,
    )
    classifier.model_threads = model_threads
    classifier.warm_up(settings.max_batch_size, settings.max_batch_tokens)
    classifier.call_overhead_tokens = (
        classifier.measure_call_overhead(settings.max_batch_size)
        if settings.call_overhead_tokens is None
        else settings.call_overhead_tokens
    )
    logger.info(
        "model loaded",
        extra={
            "base_model": info.base_model,
            "labels": list(info.labels),
            "max_length": info.max_length,
            "runtime": runtime,
            "onnx_variant": getattr(scorer, "variant", None),
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "model_threads": model_threads,
            "threads": threads,
            "call_overhead_tokens": round(classifier.call_overhead_tokens, 1),
            "load_seconds": round(time.monotonic() - started, 3),
        },
    )
    return classifier
