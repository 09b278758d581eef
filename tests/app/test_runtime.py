"""The ONNX Runtime CPU path: export, choice of runtime, and agreement with PyTorch."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app import scoring
from app.api import create_app
from app.model import MAX_AUTO_MODEL_THREADS, load_classifier, usable_cpus
from app.settings import Settings
from model_artifact import ONNX_FILE, ArtifactError, load_artifact, save_artifact
from model_artifact.onnx import main as export_main
from tests.app.support import started_client, tiny_settings

TEXTS = [
    "Fed raises interest rates for the third time this year",
    "Ebola",
    "Box office: the new superhero film breaks records " * 20,  # truncated at max length
    "Apple unveils a bigger iPhone",
    "New study links coffee to a longer life",
]


def scores(model_dir: Path, runtime: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The runtime's name, its probabilities and its raw logits for TEXTS."""
    classifier = load_classifier(tiny_settings(model_dir, runtime=runtime))
    ids = classifier.tokenize(TEXTS)
    # One batch of all, and one text at a time: both batch shapes the export did not see.
    together = scoring.scores(classifier.predict(ids), "softmax")
    alone = scoring.scores([classifier.predict([one])[0] for one in ids], "softmax")
    np.testing.assert_allclose(together, alone, atol=1e-5)
    input_ids = np.zeros((len(ids), max(map(len, ids))), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    for row, one in enumerate(ids):
        input_ids[row, : len(one)], attention_mask[row, : len(one)] = one, 1
    return classifier.runtime, together, classifier.scorer.logits(input_ids, attention_mask)


def test_onnx_runtime_scores_like_torch(tiny_onnx_model_dir: Path) -> None:
    onnx_runtime, onnx_scores, onnx_logits = scores(tiny_onnx_model_dir, "onnx")
    torch_runtime, torch_scores, torch_logits = scores(tiny_onnx_model_dir, "torch")
    assert (onnx_runtime, torch_runtime) == ("onnx", "torch")
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-5)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    # The tiny model's logits differ from text to text by far more than that.
    assert np.ptp(torch_logits, axis=0).min() > 0.1


def test_auto_picks_onnx_on_cpu_only_when_the_artifact_has_it(
    tiny_model_dir: Path, tiny_onnx_model_dir: Path
) -> None:
    assert load_classifier(tiny_settings(tiny_onnx_model_dir)).runtime == "onnx"
    assert load_classifier(tiny_settings(tiny_model_dir)).runtime == "torch"
    # An explicit non-fp32 dtype on CPU keeps PyTorch: the ONNX model is fp32.
    settings = tiny_settings(tiny_onnx_model_dir, dtype="bfloat16")
    assert load_classifier(settings).runtime == "torch"


def test_the_app_serves_through_onnx_runtime(tiny_onnx_model_dir: Path) -> None:
    client = started_client(tiny_settings(tiny_onnx_model_dir))
    try:
        response = client.post("/invocations", json={"inputs": TEXTS, "parameters": {"top_k": 4}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body) == len(TEXTS)
        for ranked in body:
            assert sum(entry["score"] for entry in ranked) == pytest.approx(1.0, abs=1e-6)
    finally:
        client.__exit__(None, None, None)


def test_onnx_required_but_missing_is_a_clear_start_up_failure(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ArtifactError, match=r"SERVE_RUNTIME=onnx, but .* has no model\.onnx"):
        load_classifier(tiny_settings(tiny_model_dir, runtime="onnx"))
    # Through the app: the server reports it and stops (the container exits non-zero).
    fatal: list[bool] = []
    app = create_app(
        tiny_settings(tiny_model_dir, runtime="onnx"), on_fatal=lambda: fatal.append(True)
    )
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(600):
            if fatal:
                break
            client.get("/ping")
        assert fatal
        assert client.get("/ping").status_code == 503
    assert "has no model.onnx" in caplog.text


def test_onnx_runtime_cannot_be_combined_with_cuda_or_half_precision() -> None:
    with pytest.raises(ValidationError, match="SERVE_RUNTIME=onnx"):
        Settings(runtime="onnx", device="cuda")
    with pytest.raises(ValidationError, match="SERVE_RUNTIME=onnx"):
        Settings(runtime="onnx", dtype="float16")
    with pytest.raises(ValidationError):
        Settings(runtime="tensorrt")  # type: ignore[arg-type]


def test_a_corrupt_onnx_file_is_reported_not_served(
    tiny_onnx_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_onnx_model_dir, model_dir)
    (model_dir / ONNX_FILE).write_bytes(b"not a protobuf")
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load"):
        load_classifier(tiny_settings(model_dir))


def test_the_export_command_adds_a_checked_model_and_leaves_no_partial_file(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    assert export_main([str(model_dir)]) == 0
    assert (model_dir / ONNX_FILE).stat().st_size > 0
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) == []


def test_the_export_command_refuses_a_directory_without_an_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_main([str(tmp_path)]) == 1
    assert "holds no artifact.json" in capsys.readouterr().err
    assert not (tmp_path / ONNX_FILE).exists()


def test_saving_a_new_artifact_drops_the_old_onnx_model(
    tiny_onnx_model_dir: Path, tmp_path: Path
) -> None:
    # Otherwise the server would keep running the old model's ONNX copy.
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_onnx_model_dir, model_dir)
    model, tokenizer, info = load_artifact(model_dir)
    save_artifact(model, tokenizer, info, model_dir)
    assert not (model_dir / ONNX_FILE).exists()
    assert load_classifier(tiny_settings(model_dir)).runtime == "torch"


def tiny_encoder(architecture: str, model_dir: Path) -> Path:
    """A tiny random classifier of another architecture, with the suite's tokenizer."""
    import torch
    from transformers import (
        AutoTokenizer,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    from devtools.artifacts import LABELS, minilm_dir
    from model_artifact import ArtifactInfo

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    labels = {"id2label": dict(enumerate(LABELS)), "label2id": {x: i for i, x in enumerate(LABELS)}}
    # A wide initialisation, so scores differ from text to text (see build_tiny_artifact).
    size = {
        "vocab_size": tokenizer.vocab_size,
        "num_labels": len(LABELS),
        "initializer_range": 0.5,
        **labels,
    }
    if architecture == "distilbert":  # the product's default base model
        config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **size)
        model = DistilBertForSequenceClassification(config)
    else:
        config = RobertaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            pad_token_id=0,
            **size,
        )
        model = RobertaForSequenceClassification(config)
    info = ArtifactInfo(labels=LABELS, max_length=64, base_model=f"tiny-{architecture}")
    save_artifact(model.eval(), tokenizer, info, model_dir)
    return model_dir


@pytest.mark.parametrize("architecture", ["distilbert", "roberta"])
def test_other_encoders_export_and_score_like_torch(architecture: str, tmp_path: Path) -> None:
    model_dir = tiny_encoder(architecture, tmp_path / "model")
    assert export_main([str(model_dir)]) == 0
    _, onnx_scores, onnx_logits = scores(model_dir, "onnx")
    _, torch_scores, torch_logits = scores(model_dir, "torch")
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-5)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    assert np.ptp(torch_logits, axis=0).min() > 0.1


def test_an_artifact_with_non_finite_scores_is_refused_at_load(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # What learning_rate=Infinity used to produce: a complete artifact of NaN weights.
    import torch

    model_dir = tmp_path / "model"
    model, tokenizer, info = load_artifact(tiny_model_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    save_artifact(model, tokenizer, info, model_dir)
    with pytest.raises(ArtifactError, match="not finite"):
        load_classifier(tiny_settings(model_dir, runtime="torch"))


def test_model_threads_follow_the_usable_cpus(
    tiny_model_dir: Path, tiny_onnx_model_dir: Path
) -> None:
    cpus = usable_cpus()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    onnx = load_classifier(tiny_settings(tiny_onnx_model_dir))
    assert onnx.model_threads == min(cpus, MAX_AUTO_MODEL_THREADS)
    # PyTorch takes the GIL between ops: one model thread, the other cores intra-op.
    assert load_classifier(tiny_settings(tiny_model_dir)).model_threads == 1
    forced = tiny_settings(tiny_onnx_model_dir, model_threads=3, torch_threads=1)
    assert load_classifier(forced).model_threads == 3


def test_usable_cpus_follow_the_affinity_mask() -> None:
    """A process pinned to one CPU (taskset, a cpuset) derives one model thread."""
    first = min(os.sched_getaffinity(0))
    run = subprocess.run(
        [sys.executable, "-c", "from app.model import usable_cpus; print(usable_cpus())"],
        preexec_fn=lambda: os.sched_setaffinity(0, {first}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.stdout.strip() == "1"


def test_two_model_threads_answer_like_one(tiny_onnx_model_dir: Path) -> None:
    expected = scores(tiny_onnx_model_dir, "onnx")[1]
    settings = tiny_settings(tiny_onnx_model_dir, model_threads=2, max_batch_size=2)
    client = started_client(settings)
    try:
        body = {"inputs": TEXTS * 3, "parameters": {"top_k": 4, "function_to_apply": "softmax"}}
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        labels = list(load_classifier(settings).labels)
        for ranked, want in zip(response.json(), np.concatenate([expected] * 3), strict=True):
            got = np.zeros(len(labels))
            for entry in ranked:
                got[labels.index(entry["label"])] = entry["score"]
            np.testing.assert_allclose(got, want, atol=1e-5)
    finally:
        client.__exit__(None, None, None)
