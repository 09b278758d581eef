"""The optimized and int8 ONNX variants: built and quantized for real from a tiny model,
checked against fp32, recorded in artifact.json, and picked (or refused) by the server."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from app import scoring
from app.model import load_classifier
from app.settings import Settings
from devtools.artifacts import LABELS
from model_artifact import (
    INFO_FILE,
    ONNX_FILE,
    ONNX_VARIANT_FILES,
    ArtifactError,
    load_artifact,
    read_info,
    save_artifact,
)
from model_artifact.onnx import main as export_main
from model_artifact.variants import METADATA_KEY, LabelledTexts, build_variants, macro_f1
from tests.app.support import started_client, tiny_settings

TEXTS = [
    "Fed raises interest rates for the third time this year",
    "Ebola outbreak spreads in west Africa",
    "Box office: the new superhero film breaks records",
    "Apple unveils a bigger iPhone",
    "New study links coffee to a longer life",
    "Stocks slide as oil prices climb",
    "Kim Kardashian and Kanye West marry in Florence",
    "Google buys a smart thermostat maker",
]
# Lenient enough for a tiny random model, whose labels sit close to each other's boundaries.
LENIENT = {"onnx_max_f1_loss": 100.0, "onnx_max_changed_labels": 1.0}


def fp32_labels(model_dir: Path, texts: list[str]) -> list[int]:
    classifier = load_classifier(tiny_settings(model_dir, runtime="onnx", onnx_variant="fp32"))
    return [int(np.argmax(row)) for row in classifier.predict(classifier.tokenize(texts))]


@pytest.fixture(scope="module")
def variants_dir(tiny_onnx_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ONNX artifact with both variants, checked on TEXTS (labelled as fp32 reads
    them, so fp32's macro-F1 is 1)."""
    model_dir = tmp_path_factory.mktemp("variants") / "model"
    shutil.copytree(tiny_onnx_model_dir, model_dir)
    texts = TEXTS * 4
    build_variants(model_dir, LabelledTexts(texts, fp32_labels(model_dir, texts)))
    return model_dir


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def set_check(model_dir: Path, variant: str, **check: float) -> None:
    """Edit the recorded check in artifact.json, as a different evaluation would have left it."""
    raw = json.loads((model_dir / INFO_FILE).read_text())
    raw["metadata"][METADATA_KEY][variant]["check"].update(check)
    (model_dir / INFO_FILE).write_text(json.dumps(raw))


def served_variant(model_dir: Path, **overrides: object) -> str:
    classifier = load_classifier(tiny_settings(model_dir, **overrides))
    assert classifier.runtime == "onnx"
    variant: str = classifier.scorer.variant  # type: ignore[attr-defined]
    return variant


def test_both_variants_are_written_checked_and_recorded(variants_dir: Path) -> None:
    records = read_info(variants_dir).metadata[METADATA_KEY]
    assert set(records) == {"fp32", "optimized", "int8"}
    assert records["fp32"]["check"]["macro_f1"] == 1.0
    for name in ("optimized", "int8"):
        assert (variants_dir / ONNX_VARIANT_FILES[name]).stat().st_size == records[name]["bytes"]
        check = records[name]["check"]
        assert check["texts"] == len(TEXTS) * 4
        assert 0.0 <= check["changed_labels"] <= 1.0
        assert check["macro_f1_loss_points"] == pytest.approx((1.0 - check["macro_f1"]) * 100)
    # The optimizer really fused the encoder (attention, LayerNorm with its residual add).
    assert {"Attention", "SkipLayerNormalization"} <= set(records["optimized"]["fused_operators"])
    assert records["int8"]["source"] == ONNX_VARIANT_FILES["optimized"]
    # int8 weights: the quantized file is a fraction of the fp32 one.
    assert records["int8"]["bytes"] < 0.5 * (variants_dir / ONNX_FILE).stat().st_size
    assert [p.name for p in variants_dir.iterdir() if p.name.startswith(".")] == []


def test_auto_serves_the_fastest_variant_whose_check_passes(
    variants_dir: Path, tmp_path: Path
) -> None:
    model_dir = copy_of(variants_dir, tmp_path)
    set_check(model_dir, "int8", changed_labels=0.0, macro_f1_loss_points=0.0)
    set_check(model_dir, "optimized", changed_labels=0.0, macro_f1_loss_points=0.0)
    assert served_variant(model_dir) == "int8"
    # Past the default threshold (2% of labels changed): refused, the next one serves.
    set_check(model_dir, "int8", changed_labels=0.021)
    assert served_variant(model_dir) == "optimized"
    assert served_variant(model_dir, onnx_max_changed_labels=0.05) == "int8"
    set_check(model_dir, "optimized", macro_f1_loss_points=0.31)  # default allows 0.3
    assert served_variant(model_dir) == "fp32"
    assert served_variant(model_dir, onnx_max_f1_loss=0.5, onnx_max_changed_labels=0.05) == "int8"


def test_the_operator_can_force_any_variant(
    variants_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = copy_of(variants_dir, tmp_path)
    set_check(model_dir, "int8", changed_labels=0.5)
    with caplog.at_level(logging.WARNING):
        assert served_variant(model_dir, onnx_variant="int8") == "int8"
    assert "although its recorded check" in caplog.text
    assert served_variant(model_dir, runtime="onnx", onnx_variant="optimized") == "optimized"
    assert served_variant(model_dir, **LENIENT, onnx_variant="fp32") == "fp32"
    with pytest.raises(ValidationError, match="SERVE_ONNX_VARIANT=int8"):
        Settings(runtime="torch", onnx_variant="int8")


def test_variants_score_close_to_fp32_and_serve_through_the_app(variants_dir: Path) -> None:
    def probabilities(variant: str) -> np.ndarray:
        settings = tiny_settings(variants_dir, onnx_variant=variant)
        classifier = load_classifier(settings)
        return scoring.scores(classifier.predict(classifier.tokenize(TEXTS)), "softmax")

    fp32 = probabilities("fp32")
    np.testing.assert_allclose(probabilities("optimized"), fp32, atol=1e-4)
    np.testing.assert_allclose(probabilities("int8"), fp32, atol=0.1)
    client = started_client(tiny_settings(variants_dir, **LENIENT))
    try:
        response = client.post("/invocations", json={"inputs": TEXTS})
        assert response.status_code == 200, response.text
        assert [entry["label"] for entry in response.json()] != []
    finally:
        client.__exit__(None, None, None)


def test_unchecked_variants_are_never_picked_by_auto(
    tiny_onnx_model_dir: Path, tmp_path: Path
) -> None:
    # What `python -m model_artifact.onnx DIR` without --check-data leaves.
    model_dir = copy_of(tiny_onnx_model_dir, tmp_path)
    records = build_variants(model_dir)
    assert records["int8"]["check"] is None
    assert served_variant(model_dir, **LENIENT) == "fp32"
    assert served_variant(model_dir, onnx_variant="int8") == "int8"


def test_an_artifact_without_variants_serves_fp32_and_refuses_a_forced_one(
    tiny_onnx_model_dir: Path,
) -> None:
    assert served_variant(tiny_onnx_model_dir, **LENIENT) == "fp32"
    with pytest.raises(ArtifactError, match=r"SERVE_ONNX_VARIANT=int8, but .* no model\.int8"):
        load_classifier(tiny_settings(tiny_onnx_model_dir, onnx_variant="int8"))


def test_the_export_command_checks_variants_on_labelled_texts(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = copy_of(tiny_model_dir, tmp_path)
    check_file = tmp_path / "test.jsonl"
    check_file.write_text(
        "\n".join(json.dumps({"text": t, "label": LABELS[i % 4]}) for i, t in enumerate(TEXTS))
    )
    assert export_main([str(model_dir), "--check-data", str(check_file)]) == 0
    records = read_info(model_dir).metadata[METADATA_KEY]
    assert records["int8"]["check"]["texts"] == len(TEXTS)
    # A label the artifact does not know: refused before anything is written.
    fresh = copy_of(tiny_model_dir, tmp_path / "fresh")
    check_file.write_text(json.dumps({"text": "x", "label": "no such label"}))
    assert export_main([str(fresh), "--check-data", str(check_file)]) == 1
    assert "label among" in capsys.readouterr().err
    assert not (fresh / ONNX_FILE).exists()


def test_saving_a_new_artifact_drops_the_old_variants(variants_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_of(variants_dir, tmp_path)
    model, tokenizer, info = load_artifact(model_dir)
    save_artifact(model, tokenizer, info, model_dir)
    assert not any((model_dir / name).exists() for name in ONNX_VARIANT_FILES.values())


def test_macro_f1_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    gold, predicted = [0, 1, 2, 2, 3, 0, 1], [0, 2, 2, 2, 3, 1, 1]
    assert macro_f1(gold, predicted) == pytest.approx(f1_score(gold, predicted, average="macro"))


@pytest.mark.slow
def test_the_training_job_writes_variants_checked_on_its_test_split(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import lzma

    from devtools.paths import SAMPLE_DATA
    from tests.training.conftest import run_training, tiny_hyperparameters, write_job

    rows = b"".join(lzma.decompress(SAMPLE_DATA.read_bytes()).splitlines(keepends=True)[::16])
    base = write_job(
        tmp_path / "opt_ml",
        tiny_hyperparameters(tiny_model_dir, max_steps=2, epochs=1, export_onnx=True),
        train_rows=rows,
    )
    result = run_training(base, timeout=240)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metadata = read_info(base / "model").metadata
    check = metadata[METADATA_KEY]["int8"]["check"]
    assert check["texts"] == min(metadata["rows"]["test"], 2000)
    assert metadata[METADATA_KEY]["fp32"]["check"]["macro_f1"] == pytest.approx(
        metadata["metrics"]["test_macro_f1"], abs=0.02
    )
    assert (base / "model" / ONNX_VARIANT_FILES["int8"]).is_file()


def test_building_variants_keeps_the_quantizers_root_logging_out_of_the_log(
    tiny_onnx_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # onnxruntime.quantization logs an INFO line per tensor through the root logger; in the
    # training job (root at INFO) that was ~50 lines of noise per run. Our own lines stay.
    model_dir = copy_of(tiny_onnx_model_dir, tmp_path)
    texts = TEXTS * 2
    with caplog.at_level(logging.INFO):
        build_variants(model_dir, LabelledTexts(texts, fp32_labels(model_dir, texts)))
    assert [r.getMessage() for r in caplog.records if r.name == "root"] == []
    assert any(r.name == "model_artifact.variants" for r in caplog.records)
