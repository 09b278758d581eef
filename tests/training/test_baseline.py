"""The TF-IDF baseline on the sample's story-grouped split, through its API and its CLI."""

from __future__ import annotations

import json
from pathlib import Path

from training.baseline import main, run_baseline
from training.data import LABELS, load_datasets


def test_baseline_beats_the_majority_class(sample_data: Path, tmp_path: Path) -> None:
    splits, _ = load_datasets({"train": sample_data})
    result = run_baseline(splits, seed=1)
    assert "TfidfVectorizer" in result["model"]
    assert result["train_seconds"] > 0
    assert result["converged"] is True
    for name in ("validation", "test"):
        report = result[name]
        assert report["labels"] == list(LABELS)
        majority = max(c["support"] for c in report["per_class"].values()) / len(
            splits.by_name()[name]
        )
        # The sample's 3k training titles still carry plenty of signal.
        assert report["accuracy"] > majority + 0.15
        assert sum(map(sum, report["confusion_matrix"])) == len(splits.by_name()[name])


def test_cli_writes_figures_and_plots(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "baseline"
    assert main(["--input", str(sample_data), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "baseline.json",
        "baseline_confusion_test.png",
        "baseline_confusion_validation.png",
    ]
    result = json.loads((out / "baseline.json").read_text())
    assert 0 < result["test"]["macro_f1"] <= 1
    assert result["split"] == "story"
