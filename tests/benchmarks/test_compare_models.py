"""The accuracy comparison's arithmetic against the training job's own metrics."""

from __future__ import annotations

import random
from pathlib import Path

from app.model import load_classifier
from app.settings import Settings
from benchmarks.compare_models import compare, predict_artifact
from devtools.artifacts import build_minilm_artifact
from devtools.paths import SAMPLE_DATA
from training.data import load_input
from training.metrics import classification_report

LABELS = ["business", "entertainment", "health", "science_and_technology"]


def test_story_bootstrap_agrees_with_the_job_metrics() -> None:
    rng = random.Random(1)
    stories = [f"story-{rng.randrange(40)}" for _ in range(600)]
    truth = [rng.choice(LABELS) for _ in stories]
    # The model is right 90% of the time, the baseline 80%: a clear, known gap.
    model = [t if rng.random() < 0.9 else rng.choice(LABELS) for t in truth]
    baseline = [t if rng.random() < 0.8 else rng.choice(LABELS) for t in truth]

    report = compare(stories, truth, model, baseline, LABELS, resamples=300, seed=0)

    expected_model = classification_report(truth, model, LABELS)["macro_f1"]
    expected_baseline = classification_report(truth, baseline, LABELS)["macro_f1"]
    assert report["model_macro_f1"] == round(expected_model, 4)
    assert report["baseline_macro_f1"] == round(expected_baseline, 4)
    assert report["test_stories"] == len(set(stories))
    assert report["model_errors"] == sum(m != t for m, t in zip(model, truth, strict=True))
    low, high = report["difference_95ci_story_bootstrap"]
    assert low < report["difference"] < high
    assert low > 0 and report["share_of_resamples_model_ahead"] > 0.95


def test_identical_predictions_give_a_zero_interval() -> None:
    stories = ["a", "a", "b", "c", "c", "c"]
    truth = ["health", "health", "business", "entertainment", "business", "health"]
    report = compare(stories, truth, truth, truth, LABELS, resamples=50, seed=0)
    assert report["difference"] == 0
    assert report["difference_95ci_story_bootstrap"] == [0, 0]
    assert report["share_of_resamples_model_ahead"] == 0


def test_the_artifact_predicts_as_the_server_does(tmp_path: Path) -> None:
    # The pretrained encoder with a random head gives texts different labels (a random tiny
    # model gives them all one), so the order of the answers is checked too.
    model_dir = build_minilm_artifact(tmp_path / "model", max_length=32, onnx=False)
    splits, _ = load_input(SAMPLE_DATA, seed=0)
    texts = [*(example.text for example in splits.test[:200]), "x " * 300]  # one truncated
    predicted = predict_artifact(model_dir, texts, batch_size=32)

    classifier = load_classifier(Settings(base_dir=tmp_path, call_overhead_tokens=0))
    scores = classifier.predict(classifier.tokenize(texts))
    expected = [classifier.labels[row.index(max(row))] for row in scores]
    assert len(set(expected)) > 1
    assert predicted == expected
