"""``python -m training.prepare`` end to end: Parquet channels that training reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import LABELS, load_datasets
from training.prepare import main


def test_prepare_writes_channels_that_load_back(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    assert main(["--input", str(sample_data), "--output", str(out), "--seed", "5", "--no-eda"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "data_summary.json",
        "test",
        "train",
        "validation",
    ]

    direct, direct_summary = load_datasets({"train": sample_data}, seed=5)
    channels = {name: out / name for name in ("train", "validation", "test")}
    prepared, summary = load_datasets(channels)
    assert prepared == direct
    assert prepared.method == "story"
    assert prepared.seed == 5
    assert summary.rows == direct_summary.rows
    assert summary.duplicates_removed == direct_summary.duplicates_removed

    recorded = json.loads((out / "data_summary.json").read_text())
    assert recorded["labels"] == list(LABELS)
    assert recorded["summary"]["sources"] == direct_summary.sources
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"


def test_existing_output_is_kept_unless_overwrite(
    sample_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["--input", str(sample_data), "--output", str(out), "--no-eda"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    args = ["--input", str(sample_data), "--output", str(out), "--split", "random", "--overwrite"]
    assert main([*args, "--no-eda"]) == 0
    assert not (out / "keep.txt").exists()
    splits, _ = load_datasets({name: out / name for name in ("train", "validation", "test")})
    assert splits.method == "random"


def test_bad_input_leaves_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "newsCorpora.csv"
    bad.write_text("1,a title,http://x,Pub,b,s1,x.com,1\n")
    out = tmp_path / "prepared"
    assert main(["--input", str(bad), "--output", str(out)]) == 1
    assert "comma-separated" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newsCorpora.csv"]
    assert main(["--input", str(tmp_path / "absent.csv"), "--output", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_failure_after_the_split_leaves_no_output(
    sample_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken_tokenizer = tmp_path / "tokenizer"
    broken_tokenizer.mkdir()
    (broken_tokenizer / "tokenizer.json").write_text("{not json")
    out = tmp_path / "prepared"
    args = ["--input", str(sample_data), "--output", str(out), "--tokenizer", str(broken_tokenizer)]
    assert main(args) == 1
    assert "cannot load the tokenizer" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer"]


def test_report_and_baseline_read_a_prepared_directory(sample_data: Path, tmp_path: Path) -> None:
    from training import baseline, eda

    out = tmp_path / "prepared"
    assert main(["--input", str(sample_data), "--output", str(out), "--seed", "3", "--no-eda"]) == 0
    assert eda.main(["--input", str(out), "--output", str(tmp_path / "eda")]) == 0
    report = json.loads((tmp_path / "eda" / "report.json").read_text())
    assert report["seed"] == 3  # the prepared split's, not the CLI default
    assert baseline.main(["--input", str(out), "--output", str(tmp_path / "baseline")]) == 0
    result = json.loads((tmp_path / "baseline" / "baseline.json").read_text())
    assert result["rows"] == report["data"]["rows"]
