"""The data report on the committed sample: its files, its figures and its token counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.artifacts import minilm_dir
from tests.training.tricky_titles import TRICKY
from training.chunk_tokenize import count_tokens
from training.data import DataSummary, Splits, load_datasets
from training.eda import main, write_eda_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sample_splits(sample_data: Path) -> tuple[Splits, DataSummary]:
    return load_datasets({"train": sample_data})


def test_report_files_and_figures(
    sample_splits: tuple[Splits, DataSummary], tmp_path: Path
) -> None:
    splits, summary = sample_splits
    out = tmp_path / "eda"
    markdown = write_eda_report(
        splits, out, tokenizer_path=minilm_dir(), max_length=24, summary=summary
    )
    assert markdown == out / "report.md"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "class_balance.png",
        "report.json",
        "report.md",
        "story_sizes.png",
        "title_length_chars.png",
        "title_length_tokens.png",
        "top_publishers.png",
    ]
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"

    report = json.loads((out / "report.json").read_text())
    assert report["split_method"] == "story"
    for name, items in splits.by_name().items():
        balance = report["class_balance"][name]
        assert balance["rows"] == len(items)
        assert sum(balance["counts"].values()) == len(items)
        assert balance["counts"]["health"] == sum(e.label == "health" for e in items)
    assert report["stories"]["count"] == 304
    assert report["data"]["duplicates_removed"] == summary.duplicates_removed
    shares = [report["truncated_share"][str(n)] for n in (16, 24, 32, 48, 64, 128)]
    assert shares == sorted(shares, reverse=True)
    assert 0 < report["truncated_share"]["24"] < 0.2
    assert report["title_tokens"]["max"] >= report["title_tokens"]["p99"]

    text = markdown.read_text()
    assert "split: **story**" in text
    assert "| health |" in text
    assert "(this run: **24**)" in text
    assert "![class_balance.png](class_balance.png)" in text


def test_report_without_tokenizer_and_rerun_replaces(
    sample_splits: tuple[Splits, DataSummary], tmp_path: Path
) -> None:
    splits, _ = sample_splits
    out = tmp_path / "eda"
    out.mkdir()
    (out / "stale.png").write_bytes(b"old")
    write_eda_report(splits, out, tokenizer_path=None, max_length=128)
    names = {p.name for p in out.iterdir()}
    assert "stale.png" not in names
    assert "title_length_tokens.png" not in names
    report = json.loads((out / "report.json").read_text())
    assert "title_tokens" not in report
    assert "No tokenizer was given" in (out / "report.md").read_text()


def test_token_counts_match_the_tokenizer_title_by_title(
    sample_splits: tuple[Splits, DataSummary],
) -> None:
    from tokenizers import Tokenizer

    splits, _ = sample_splits
    texts = [*TRICKY, *(e.text for e in splits.train[:1500])]
    reference = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    # The per-chunk cache must give exactly what tokenizing each whole title gives.
    assert count_tokens(texts, minilm_dir()) == [len(e.ids) for e in reference.encode_batch(texts)]
    assert count_tokens(["Fed raises rates", ""], minilm_dir()) == [5, 2]  # [CLS] ... [SEP]


def test_cli_on_a_bad_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "newsCorpora.csv"
    bad.write_text("ID\tTITLE\tURL\tPUBLISHER\tCATEGORY\tSTORY\tHOSTNAME\tTIMESTAMP\n")
    assert main(["--input", str(bad), "--output", str(tmp_path / "eda")]) == 1
    assert "header row" in capsys.readouterr().err
    assert not (tmp_path / "eda").exists()
