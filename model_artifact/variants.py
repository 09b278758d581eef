"""Faster CPU copies of the artifact's ``model.onnx``, each checked against it on labelled texts.

Two optional files may sit beside ``model.onnx``:

- ``model.optimized.onnx``: ONNX Runtime's transformer optimizer (``model_type="bert"``) fuses
  attention, LayerNorm (with its residual add) and GELU into single kernels;
- ``model.int8.onnx``: the optimized graph (or ``model.onnx`` when the optimizer failed) with
  its MatMul/Attention weights quantized to int8 per output channel and its activations
  quantized at run time (dynamic quantization: no calibration data needed).

Each variant is run next to the fp32 model on the evaluation texts; the share of labels that
change and both macro-F1s are recorded under ``metadata["onnx_variants"]`` in
``artifact.json``. The server's ``SERVE_RUNTIME=auto`` serves the fastest variant whose check
passed :class:`Threshold` (:func:`pick_variant`). Files are built in a hidden directory and
renamed into place, ``artifact.json`` is rewritten through a rename too, and a variant that
cannot be built is a warning that leaves the artifact as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_artifact import (
    INFO_FILE,
    ONNX_FILE,
    ONNX_VARIANT_FILES,
    ArtifactError,
    ArtifactInfo,
    load_tokenizer,
    read_info,
)

logger = logging.getLogger("model_artifact.variants")

METADATA_KEY = "onnx_variants"
# Fastest first, as measured on CPUs (docs/benchmarks.md): int8 runs the fused graph with
# int8 weight matmuls; the fused graph saves the unfused one's many small kernels.
SPEED_ORDER = ("int8", "optimized", "fp32")
# The check runs at most this many evaluation texts through every variant: enough to resolve
# 0.1% of changed labels, and seconds per variant on a CPU even for a test split of 60,000.
MAX_CHECK_TEXTS = 2000
_CHECK_BATCH = 32


@dataclass(frozen=True)
class LabelledTexts:
    """Evaluation texts and their true label indices (the artifact's label order)."""

    texts: Sequence[str]
    labels: Sequence[int]


@dataclass(frozen=True)
class Threshold:
    """How far a variant may stray from fp32 and still be served by ``auto``."""

    max_macro_f1_loss_points: float = 0.3  # percentage points of macro-F1
    max_changed_labels: float = 0.02  # share of texts whose label differs from fp32's

    def passes(self, check: Mapping[str, Any] | None) -> bool:
        if not check:
            return False
        return (
            float(check["macro_f1_loss_points"]) <= self.max_macro_f1_loss_points
            and float(check["changed_labels"]) <= self.max_changed_labels
        )


def build_variants(
    model_dir: Path, check_data: LabelledTexts | None = None
) -> dict[str, dict[str, Any]]:
    """Write the optimized and int8 variants of ``model_dir/model.onnx``, check each against
    it on ``check_data`` (up to :data:`MAX_CHECK_TEXTS`), record the result in
    ``artifact.json``; return what was recorded. Without ``check_data`` a variant is written
    but unchecked, which ``auto`` never serves (an operator may still force it)."""
    fp32 = model_dir / ONNX_FILE
    if not fp32.is_file():
        raise ArtifactError(f"{model_dir} has no {ONNX_FILE} to derive variants from")
    info = read_info(model_dir)
    records: dict[str, dict[str, Any]] = dict(info.metadata.get(METADATA_KEY, {}))
    fp32_run = _Run.of(fp32, model_dir, check_data) if check_data else None
    workdir = Path(tempfile.mkdtemp(prefix=".variants-", dir=model_dir))
    try:
        builders: list[tuple[str, Callable[[Path, Path], dict[str, Any]]]] = [
            ("optimized", _optimize),
            ("int8", _quantize),
        ]
        for name, build in builders:
            # int8 quantizes the fused graph when there is one: both speed-ups add up.
            source = model_dir / ONNX_VARIANT_FILES["optimized"] if name == "int8" else fp32
            if not source.is_file():
                source = fp32
            started = time.monotonic()
            try:
                out = workdir / ONNX_VARIANT_FILES[name]
                record = build(source, out)
                record["source"] = source.name
                record["bytes"] = out.stat().st_size
                if check_data is not None and fp32_run is not None:
                    record["check"] = _Run.of(out, model_dir, check_data).compare(fp32_run)
                else:
                    record["check"] = None
            except Exception as exc:  # noqa: BLE001  (optimizer, quantizer: many types)
                logger.warning(
                    "no %s variant (the artifact keeps what it had): %s",
                    name,
                    f"{type(exc).__name__}: {exc}",
                )
                continue
            out.replace(model_dir / ONNX_VARIANT_FILES[name])
            records[name] = record
            logger.info(
                "wrote %s (%.1f MiB) in %.1f s; check: %s",
                ONNX_VARIANT_FILES[name],
                record["bytes"] / 2**20,
                time.monotonic() - started,
                record["check"] or "none (no evaluation texts given)",
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if fp32_run is not None:
        records["fp32"] = {"file": ONNX_FILE, "check": fp32_run.reference()}
    _record(model_dir, info, records)
    return records


def pick_variant(
    model_dir: Path, info: ArtifactInfo, threshold: Threshold, forced: str = "auto"
) -> str:
    """The variant to serve: ``forced`` when not ``auto`` (its file must exist), otherwise the
    fastest whose recorded check passes ``threshold``, and fp32 when none does."""
    records: Mapping[str, Any] = info.metadata.get(METADATA_KEY, {})
    if forced != "auto":
        if not (model_dir / ONNX_VARIANT_FILES[forced]).is_file():
            raise ArtifactError(
                f"SERVE_ONNX_VARIANT={forced}, but {model_dir} has no "
                f"{ONNX_VARIANT_FILES[forced]}: add it with `python -m model_artifact.onnx "
                f"{model_dir}`, or set SERVE_ONNX_VARIANT=auto"
            )
        if forced != "fp32" and not threshold.passes(records.get(forced, {}).get("check")):
            logger.warning(
                "serving the %s variant as forced, although its recorded check %s does not "
                "pass the threshold %s",
                forced,
                records.get(forced, {}).get("check"),
                threshold,
            )
        return forced
    for name in SPEED_ORDER:
        if name == "fp32":
            return name
        record = records.get(name)
        if not (model_dir / ONNX_VARIANT_FILES[name]).is_file() or record is None:
            continue
        if threshold.passes(record.get("check")):
            return name
        logger.info(
            "not serving the %s variant: its check %s does not pass %s",
            name,
            record.get("check"),
            threshold,
        )
    return "fp32"


# -- building ---------------------------------------------------------------------------------


def _optimize(source: Path, out: Path) -> dict[str, Any]:
    """Fuse the graph; its source is a TorchScript export with eager attention (see
    :func:`_export_for_fusion`), whose attention ORT's BERT fusion recognises, else ``source``."""
    from onnxruntime.transformers.optimizer import optimize_model

    model_dir = source.parent
    heads, hidden = _attention_shape(model_dir)
    # It logs each fusion at INFO and warns about shapes it cannot infer: keep the job's log.
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        try:
            fusable = _export_for_fusion(model_dir, out.with_suffix(".eager.onnx"))
        except Exception as exc:  # noqa: BLE001  (the legacy exporter raises many types)
            logger.info("fusing %s itself: no eager-attention export (%s)", source.name, exc)
            fusable = source
        model = optimize_model(str(fusable), model_type="bert", num_heads=heads, hidden_size=hidden)
        fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
        model.save_model_to_file(str(out), use_external_data_format=False)
    finally:
        quiet.setLevel(level)
    origin = source.name if fusable == source else "TorchScript export, eager attention"
    return {"file": out.name, "fused_operators": fused, "fused_from": origin}


def _attention_shape(model_dir: Path) -> tuple[int, int]:
    """Heads and hidden size from config.json (BERT's or DistilBERT's names); 0 lets the
    optimizer guess, which fails on most graphs and leaves attention unfused."""
    import json

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    heads = config.get("num_attention_heads", config.get("n_heads", 0))
    hidden = config.get("hidden_size", config.get("dim", 0))
    return int(heads), int(hidden)


def _export_for_fusion(model_dir: Path, out: Path) -> Path:
    """The model through the TorchScript exporter with eager attention: the graph pattern
    ORT's attention fusion matches (the dynamo export of SDPA attention is not fused)."""
    import warnings

    import torch

    from model_artifact import load_artifact
    from model_artifact.onnx import _CHECK_TEXTS, INPUT_NAMES, OUTPUT_NAME, logits_module

    model, tokenizer, _ = load_artifact(model_dir)
    model = model.float().eval()
    model.config._attn_implementation = "eager"

    sample = tokenizer(list(_CHECK_TEXTS[:2]), padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            logits_module(model),
            (sample["input_ids"], sample["attention_mask"]),
            str(out),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: axes for name in INPUT_NAMES},
            opset_version=17,
        )
    return out


def _quantize(source: Path, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per output channel: one scale per row of each weight matrix keeps the few large-range
    # rows of a fine-tuned encoder from crushing the others to a handful of levels.
    # The quantizer logs through the root logger: an INFO line per tensor (~50 for MiniLM)
    # and, on every call, its advice to run a shape pass first. Keep both out of the job's log.
    root = logging.getLogger()
    hint = _QuietQuantizer("pre-process")
    root.addFilter(hint)
    try:
        quantize_dynamic(
            source,
            out,
            per_channel=True,
            weight_type=QuantType.QInt8,
            # The fused graph's com.microsoft ops defeat ONNX's shape inference; its tensors
            # are all fp32 (the quantizer's own advice for this case).
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(hint)
    return {"file": out.name, "weights": "int8, per channel", "activations": "uint8, dynamic"}


class _QuietQuantizer(logging.Filter):
    """On the root logger only (records logged by name reach it without passing its filters):
    drops the quantizer's INFO lines and its warning that contains ``phrase``."""

    def __init__(self, phrase: str) -> None:
        super().__init__()
        self.phrase = phrase

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and self.phrase not in record.getMessage()


# -- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """One model's labels on the check texts, and how long they took."""

    predicted: list[int]
    gold: list[int]
    seconds: float

    @classmethod
    def of(cls, path: Path, model_dir: Path, data: LabelledTexts) -> _Run:
        import numpy as np
        import onnxruntime

        from model_artifact.onnx import INPUT_NAMES, OUTPUT_NAME

        tokenizer, info = load_tokenizer(model_dir)
        texts, gold = list(data.texts)[:MAX_CHECK_TEXTS], list(data.labels)[:MAX_CHECK_TEXTS]
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        predicted: list[int] = []
        seconds = 0.0
        for start in range(0, len(texts), _CHECK_BATCH):
            encoded = tokenizer(
                texts[start : start + _CHECK_BATCH],
                padding=True,
                truncation=True,
                max_length=info.max_length,
                return_tensors="np",
            )
            feeds = {name: encoded[name].astype(np.int64) for name in INPUT_NAMES}
            started = time.perf_counter()
            logits = session.run([OUTPUT_NAME], feeds)[0]
            seconds += time.perf_counter() - started
            predicted.extend(int(i) for i in logits.argmax(axis=-1))
        return cls(predicted, gold, seconds)

    def reference(self) -> dict[str, Any]:
        return {
            "texts": len(self.gold),
            "macro_f1": round(macro_f1(self.gold, self.predicted), 6),
            "texts_per_second": round(len(self.gold) / max(self.seconds, 1e-9), 1),
        }

    def compare(self, fp32: _Run) -> dict[str, Any]:
        changed = sum(a != b for a, b in zip(self.predicted, fp32.predicted, strict=True))
        f1, fp32_f1 = macro_f1(self.gold, self.predicted), macro_f1(fp32.gold, fp32.predicted)
        return {
            "texts": len(self.gold),
            "changed_labels": round(changed / max(len(self.gold), 1), 6),
            "macro_f1": round(f1, 6),
            "fp32_macro_f1": round(fp32_f1, 6),
            "macro_f1_loss_points": round((fp32_f1 - f1) * 100, 4),
            "texts_per_second": round(len(self.gold) / max(self.seconds, 1e-9), 1),
            "fp32_texts_per_second": round(len(fp32.gold) / max(fp32.seconds, 1e-9), 1),
        }


def macro_f1(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the classes in either list (as scikit-learn)."""
    classes = sorted(set(gold) | set(predicted))
    scores = []
    for label in classes:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def _record(model_dir: Path, info: ArtifactInfo, records: dict[str, dict[str, Any]]) -> None:
    """Rewrite artifact.json with the variants' records, through a rename (it marks the
    artifact finished, so it is never half-written)."""
    updated = ArtifactInfo(
        labels=info.labels,
        max_length=info.max_length,
        base_model=info.base_model,
        format_version=info.format_version,
        metadata={**info.metadata, METADATA_KEY: records},
    )
    partial = model_dir / f".{INFO_FILE}.partial"
    try:
        partial.write_text(updated.to_json(), encoding="utf-8")
        partial.replace(model_dir / INFO_FILE)
    finally:
        partial.unlink(missing_ok=True)
