"""The artifact's ONNX copy of the model, which the server runs on CPUs with ONNX Runtime.

``model.onnx`` is optional in an artifact. :func:`export_onnx` makes it from the artifact's
own saved weights (so it can only describe the model beside it), with dynamic batch and
sequence axes, checks it against PyTorch on batch shapes other than the one it was traced
with, and only then renames it into place: a directory never holds a half-written or
unchecked ``model.onnx``. The training job calls it after writing the artifact; for an
artifact trained before, run::

    python -m model_artifact.onnx /path/to/model [--check-data test.jsonl]

which also writes the faster variants (:mod:`model_artifact.variants`), checked against
``model.onnx`` on the labelled texts of ``--check-data`` (JSON Lines of
``{"text": ..., "label": ...}``, e.g. the test split); without it they are written unchecked,
and the server's ``auto`` keeps serving fp32 until an operator forces one.

Needs the ``onnx``, ``onnxscript`` and ``onnxruntime`` packages (the ``train`` extra); nothing
is imported until it is called.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_artifact import ONNX_FILE, ArtifactError, load_artifact

if TYPE_CHECKING:
    import numpy as np

    from model_artifact.variants import LabelledTexts

logger = logging.getLogger("model_artifact.onnx")  # also when run with -m

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
# Largest |logit| difference between PyTorch and ONNX Runtime (both fp32) accepted at export.
TOLERANCE = 1e-3

_CHECK_TEXTS = (
    "Stocks rally as the central bank holds rates",
    "New vaccine trial shows promise",
    "Actor wins award",
)


class OnnxExportError(ArtifactError):
    """The model could not be exported to ONNX, or the export disagrees with PyTorch."""


def logits_module(model: Any) -> Any:
    """``model`` as the server calls it, for an exporter: two int64 inputs, one logits output."""
    import torch

    class Logits(torch.nn.Module):  # type: ignore[misc]  # torch is not followed by mypy
        def __init__(self) -> None:
            super().__init__()
            self.classifier = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.classifier(
                input_ids=input_ids, attention_mask=attention_mask
            ).logits
            return logits

    return Logits()


def export_onnx(model_dir: Path) -> Path:
    """Write ``model_dir/model.onnx`` from the finished artifact in ``model_dir``; return it."""
    started = time.monotonic()
    try:  # all three up front, rather than failing after the export's work
        import onnxruntime  # noqa: F401  (the check against PyTorch)
        import onnxscript  # noqa: F401  (the exporter)
        import torch
    except ImportError as exc:
        raise OnnxExportError(
            f"exporting to ONNX needs onnx, onnxscript and onnxruntime ({exc}); install the "
            "project's train extra"
        ) from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model, tokenizer, info = load_artifact(model_dir)
    model = model.float().eval()

    sample = tokenizer(list(_CHECK_TEXTS[:2]), padding=True, truncation=True, return_tensors="pt")
    batch = torch.export.Dim("batch", min=1, max=65536)
    sequence = torch.export.Dim("sequence", min=2, max=max(info.max_length, 3))
    partial = model_dir / f".{ONNX_FILE}.partial"
    # The exporter logs every graph rewrite at INFO (about 100 lines for BERT) and warns about
    # each torchvision op it skips: the job's log keeps only our one line and real errors.
    quiet = {"torch.onnx": logging.ERROR, "onnxscript": logging.WARNING, "onnx_ir": logging.WARNING}
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not ours
            program = torch.onnx.export(
                logits_module(model),
                (sample["input_ids"], sample["attention_mask"]),
                dynamo=True,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes={
                    "input_ids": {0: batch, 1: sequence},
                    "attention_mask": {0: batch, 1: sequence},
                },
                optimize=True,
                verbose=False,
            )
            if program is None:  # only without dynamo; keeps the type checker honest
                raise OnnxExportError("torch.onnx.export returned no program")
            # One self-contained file, so one rename publishes it; a model of 2 GB or more
            # fails here (ONNX's protobuf limit) and is served with PyTorch.
            program.save(str(partial), external_data=False)
        _check_against_torch(partial, model, tokenizer, info.max_length)
        partial.replace(model_dir / ONNX_FILE)
    except OnnxExportError:
        raise
    except Exception as exc:  # the exporter raises many types; all mean "no ONNX file"
        raise OnnxExportError(f"cannot export {info.base_model} to ONNX: {exc}") from exc
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        partial.unlink(missing_ok=True)
    logger.info(
        "wrote %s (%.1f MiB, checked against PyTorch) in %.1f s",
        model_dir / ONNX_FILE,
        (model_dir / ONNX_FILE).stat().st_size / 2**20,
        time.monotonic() - started,
    )
    return model_dir / ONNX_FILE


def _check_against_torch(path: Path, model: object, tokenizer: object, max_length: int) -> None:
    """Compare logits on shapes the export was not traced with (one text; three, longer)."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for texts in ([_CHECK_TEXTS[0]], [*_CHECK_TEXTS[1:], " ".join(_CHECK_TEXTS)]):
        encoded = tokenizer(  # type: ignore[operator]
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds: dict[str, np.ndarray] = {
            name: encoded[name].astype(np.int64) for name in INPUT_NAMES
        }
        onnx_logits = session.run([OUTPUT_NAME], feeds)[0]
        with torch.inference_mode():
            torch_logits = (
                model(  # type: ignore[operator]
                    **{name: torch.from_numpy(value) for name, value in feeds.items()}
                )
                .logits.float()
                .numpy()
            )
        difference = float(np.abs(onnx_logits - torch_logits).max())
        if onnx_logits.shape != torch_logits.shape or difference > TOLERANCE:
            raise OnnxExportError(
                f"the ONNX model disagrees with PyTorch on {len(texts)} text(s): "
                f"shape {onnx_logits.shape} vs {torch_logits.shape}, "
                f"largest logit difference {difference:.2e} (allowed {TOLERANCE:.0e})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_artifact.onnx",
        description="Add model.onnx (for the server's ONNX Runtime CPU path) to a model artifact.",
    )
    parser.add_argument("model_dir", type=Path, help="a finished artifact (holds artifact.json)")
    parser.add_argument(
        "--check-data",
        type=Path,
        help='JSON Lines of {"text", "label"} (e.g. the test split) to check the faster '
        "variants against model.onnx on; without it they are written unchecked",
    )
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="write model.onnx only, not model.optimized.onnx and model.int8.onnx",
    )
    args = parser.parse_args(argv)
    # The exporter's own INFO lines (graph rewrites) are noise to someone adding a file.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    from model_artifact import variants

    logging.getLogger(variants.logger.name).setLevel(logging.INFO)
    try:
        check_data = _read_check_data(args.check_data, args.model_dir) if args.check_data else None
        export_onnx(args.model_dir)
        if not args.no_variants:
            variants.build_variants(args.model_dir, check_data)
    except ArtifactError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


def _read_check_data(path: Path, model_dir: Path) -> LabelledTexts:
    from model_artifact import read_info
    from model_artifact.variants import LabelledTexts

    label_ids = {label: i for i, label in enumerate(read_info(model_dir).labels)}
    texts: list[str] = []
    labels: list[int] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or row.get("label") not in label_ids:
                    raise ArtifactError(
                        f'{path}:{number}: need {{"text": ..., "label": ...}} with a '
                        f"label among {sorted(label_ids)}"
                    )
                texts.append(str(row["text"]))
                labels.append(label_ids[row["label"]])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read the check data {path}: {exc}") from exc
    if not texts:
        raise ArtifactError(f"{path} holds no texts to check the variants on")
    return LabelledTexts(texts, labels)


if __name__ == "__main__":
    sys.exit(main())
