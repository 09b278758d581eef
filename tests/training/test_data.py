"""The raw reader on crafted inputs, the grouping guarantees of the split, and the channels."""

from __future__ import annotations

import gzip
import lzma
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data import (
    LABELS,
    DataSummary,
    Example,
    Splits,
    load_datasets,
    normalize_title,
    parse_raw,
    read_prepared_split,
    read_raw_bytes,
    split_examples,
    write_prepared_split,
)
from training.errors import DataError, HyperparameterError
from training.hyperparameters import parse_hyperparameters

CATEGORIES = "bemt"


def uci_line(
    row_id: int, title: str, category: str = "b", story: str = "s1", publisher: str = "Pub"
) -> str:
    url = f"http://example.com/{row_id}"
    return f"{row_id}\t{title}\t{url}\t{publisher}\t{category}\t{story}\texample.com\t1394470370698"


def crafted_lines(stories: int = 40, per_story: int = 5) -> list[str]:
    """Unique titles in ``stories`` stories, categories cycling b/e/m/t by story."""
    lines: list[str] = []
    for story in range(stories):
        category = CATEGORIES[story % 4]
        for item in range(per_story):
            row_id = len(lines) + 1
            lines.append(uci_line(row_id, f"Headline {story}-{item}", category, f"story{story}"))
    return lines


def write_raw(path: Path, lines: list[str], newline: str = "\n", prefix: bytes = b"") -> Path:
    path.write_bytes(prefix + "".join(line + newline for line in lines).encode("utf-8"))
    return path


def load(path: Path, **options: Any) -> tuple[Splits, DataSummary]:
    return load_datasets({"train": path}, **options)


def all_examples(splits: Splits) -> list[Example]:
    return [*splits.train, *splits.validation, *splits.test]


def test_quotes_in_titles_never_merge_lines(tmp_path: Path) -> None:
    lines = crafted_lines()
    # An unbalanced quote would make a CSV reader swallow the following lines into one field.
    lines[3] = uci_line(4, "Apple's \"iWatch rumours", "t", "story0")
    lines[4] = uci_line(5, '"Quoted" start and end "', "t", "story0")
    splits, summary = load(write_raw(tmp_path / "news.csv", lines))
    texts = {example.text for example in all_examples(splits)}
    assert "Apple's \"iWatch rumours" in texts
    assert '"Quoted" start and end "' in texts
    assert sum(summary.rows.values()) == len(lines)
    assert sum(summary.bad_lines.values()) == 0


def test_crlf_and_bom_read_like_plain_lf(tmp_path: Path) -> None:
    lines = crafted_lines()
    plain, _ = load(write_raw(tmp_path / "lf.csv", lines))
    windows, summary = load(write_raw(tmp_path / "crlf.csv", lines, "\r\n", b"\xef\xbb\xbf"))
    assert windows.train == plain.train
    assert windows.test == plain.test
    assert summary.bad_lines["wrong_column_count"] == 0
    assert windows.train[0].text == plain.train[0].text  # the BOM is not glued to an ID/title


def test_unicode_line_separators_inside_titles_stay_in_their_row(tmp_path: Path) -> None:
    lines = crafted_lines()
    lines[0] = uci_line(1, "Left\u2028right \x85 and \x1c too", "b", "story0")
    splits, summary = load(write_raw(tmp_path / "news.csv", lines))
    assert "Left\u2028right \x85 and \x1c too" in {e.text for e in all_examples(splits)}
    assert sum(summary.bad_lines.values()) == 0


def test_bad_lines_are_counted_by_kind_without_shifting_columns(tmp_path: Path) -> None:
    lines = crafted_lines(stories=200)
    lines[10] = uci_line(11, "Title\twith a tab", "e", "story2")  # 9 fields
    lines[20] = uci_line(21, "Unknown category", "x", "story4")
    lines[30] = uci_line(31, "   ", "b", "story6")
    lines[40] = ""
    raw = "".join(line + "\n" for line in lines).encode("utf-8")
    undecodable = uci_line(999, "Caf\udce9", "b", "story8").encode("utf-8", "surrogateescape")
    path = tmp_path / "news.csv"
    path.write_bytes(raw + undecodable + b"\n")

    splits, summary = load(path, max_bad_fraction=0.01)
    assert summary.bad_lines == {
        "wrong_column_count": 1,
        "unknown_category": 1,
        "empty_title": 1,
        "undecodable": 1,
        "blank_line": 1,
    }
    assert summary.bad_line_examples["wrong_column_count"] == [11]
    assert summary.bad_line_examples["undecodable"] == [len(lines) + 1]
    examples = all_examples(splits)
    assert len(examples) == len(lines) + 1 - 5
    # Every surviving row kept its own columns: labels still follow the story's category.
    for example in examples:
        story_number = int(example.story.removeprefix("story"))
        assert example.label == LABELS[story_number % 4]


def test_too_many_bad_lines_fail_naming_the_first_line_numbers(tmp_path: Path) -> None:
    lines = crafted_lines()
    for index in (0, 2, 4):
        lines[index] = lines[index].replace("\tb\t", "\tbusiness\t")
    with pytest.raises(DataError) as caught:
        load(write_raw(tmp_path / "news.csv", lines), max_bad_fraction=0.001)
    message = str(caught.value)
    assert "unknown_category 3 (line 1, 3, 5)" in message
    assert "max_bad_fraction" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (
            b"ID\tTITLE\tURL\tPUBLISHER\tCATEGORY\tSTORY\tHOSTNAME\tTIMESTAMP\n"
            + uci_line(1, "A title").encode(),
            "header row",
        ),
        (b"1,A title,http://x,Pub,b,s1,x.com,1394470370698\n", "comma-separated"),
        (b"just some text\nmore text\n", "not tab-separated"),
    ],
)
def test_unusable_files_get_specific_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "newsCorpora.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        load(path)


def test_missing_file_and_bad_archives(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "newsCorpora.csv")
    broken = tmp_path / "newsCorpora.csv.xz"
    broken.write_bytes(b"not xz at all")
    with pytest.raises(DataError, match=r"not a valid \.xz archive"):
        load(broken)
    other = tmp_path / "news.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("2pageSessions.csv", "x\n")
    with pytest.raises(DataError, match=r"holds no newsCorpora\.csv .*2pageSessions\.csv"):
        load(other)


def test_compressed_and_zipped_files_read_the_same(tmp_path: Path) -> None:
    lines = crafted_lines()
    content = "".join(line + "\n" for line in lines).encode()
    plain, plain_summary = load(write_raw(tmp_path / "newsCorpora.csv", lines))
    (tmp_path / "xz").mkdir()
    (tmp_path / "xz" / "newsCorpora.csv.xz").write_bytes(lzma.compress(content))
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "newsCorpora.csv.gz").write_bytes(gzip.compress(content))
    with zipfile.ZipFile(tmp_path / "news+aggregator.zip", "w") as archive:
        archive.writestr("2pageSessions.csv", "x\n")
        archive.writestr("newsCorpora.csv", content)
    for source in (tmp_path / "xz", tmp_path / "gz", tmp_path / "news+aggregator.zip"):
        splits, summary = load(source)
        assert splits == plain
        # The hash is of the uncompressed content, so it names the data, not its packaging.
        assert summary.sources == plain_summary.sources


def test_archives_that_expand_past_the_cap_fail_without_expanding(tmp_path: Path) -> None:
    # A "bomb": 64 MiB of zeros packs into a few KiB; the read stops at the cap (1 MiB here,
    # 1 GiB in jobs) instead of holding all of it, however large it would grow.
    bomb = bytes(64 * 1024 * 1024)
    (tmp_path / "bomb.csv.xz").write_bytes(lzma.compress(bomb, preset=0))
    (tmp_path / "bomb.csv.gz").write_bytes(gzip.compress(bomb, compresslevel=1))
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("newsCorpora.csv", bomb)
    (tmp_path / "big.csv").write_bytes(bytes(2 * 1024 * 1024))
    for name in ("bomb.csv.xz", "bomb.csv.gz", "bomb.zip", "big.csv"):
        with pytest.raises(DataError, match="more than 1 MiB"):
            read_raw_bytes(tmp_path / name, limit=1024 * 1024)
    assert len(read_raw_bytes(tmp_path / "big.csv", limit=4 * 1024 * 1024)) == 2 * 1024 * 1024


def test_sample_split_keeps_stories_and_titles_apart(sample_data: Path) -> None:
    splits, summary = load(sample_data)
    parts = splits.by_name()
    stories = {name: {e.story for e in items} for name, items in parts.items()}
    titles = {name: [normalize_title(e.text) for e in items] for name, items in parts.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not stories[a] & stories[b], f"a story straddles {a} and {b}"
        assert not set(titles[a]) & set(titles[b]), f"a title straddles {a} and {b}"
    for name, normalized in titles.items():
        assert len(normalized) == len(set(normalized)), f"duplicate titles within {name}"
    assert splits.method == "story"
    assert summary.rows == {name: len(items) for name, items in parts.items()}
    assert summary.lines_read == 4031
    assert sum(summary.rows.values()) + summary.duplicates_removed == 4031

    # Stratified as far as grouping allows: each label's share of test is near its share overall.
    overall = Counter(e.label for e in all_examples(splits))
    test = Counter(e.label for e in splits.test)
    total = sum(overall.values())
    for label in LABELS:
        assert abs(test[label] / len(splits.test) - overall[label] / total) < 0.03
    assert 0.07 < len(splits.test) / total < 0.13
    assert 0.07 < len(splits.validation) / total < 0.13


def test_split_is_deterministic_by_seed(sample_data: Path) -> None:
    first, _ = load(sample_data, seed=7)
    again, _ = load(sample_data, seed=7)
    other, _ = load(sample_data, seed=8)
    assert first == again
    assert {e.story for e in first.test} != {e.story for e in other.test}


def test_duplicate_titles_are_removed_before_splitting(tmp_path: Path) -> None:
    lines = crafted_lines()
    # The same headline, differently spaced and cased, in three other stories.
    lines.append(uci_line(901, "HEADLINE  0-0", "b", "story9"))
    lines.append(uci_line(902, " headline 0-0", "e", "story13"))
    lines.append(uci_line(903, "Headline 0-0", "b", "story17"))
    splits, summary = load(write_raw(tmp_path / "news.csv", lines))
    assert summary.duplicates_removed == 3
    assert summary.duplicate_label_conflicts == 1
    matches = [e for e in all_examples(splits) if normalize_title(e.text) == "headline 0-0"]
    assert matches == [Example("Headline 0-0", "business", "story0", "Pub")]


def test_random_split_only_when_asked(sample_data: Path) -> None:
    splits, _ = load(sample_data, split="random")
    assert splits.method == "random"
    stories = [{e.story for e in items} for items in splits.by_name().values()]
    assert stories[0] & stories[2], "a random row split should mix stories across splits"
    with pytest.raises(HyperparameterError, match="split must be"):
        load(sample_data, split="rows")


def test_too_few_groups_fail_clearly() -> None:
    examples = [Example(f"t{i}", LABELS[i % 4], "same-story") for i in range(50)]
    with pytest.raises(DataError, match="too few"):
        split_examples(examples, seed=1, validation_fraction=0.1, test_fraction=0.1)
    with pytest.raises(HyperparameterError):
        split_examples(examples, seed=1, validation_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize(("validation", "test"), [(0.45, 0.45), (0.6, 0.35)])
def test_the_job_and_the_data_loader_refuse_the_same_split_fractions(
    sample_data: Path, validation: float, test: float
) -> None:
    """One rule (training.data.splitting): a tenth of the rows or less left to train fails."""
    raw = {"validation_fraction": str(validation), "test_fraction": str(test)}
    with pytest.raises(HyperparameterError, match="more than 10% of the rows for training"):
        parse_hyperparameters(raw)
    with pytest.raises(HyperparameterError, match="more than 10% of the rows for training"):
        load_datasets({"train": sample_data}, validation_fraction=validation, test_fraction=test)


def test_split_fractions_just_inside_the_rule_work_for_both(sample_data: Path) -> None:
    hp = parse_hyperparameters({"validation_fraction": "0.45", "test_fraction": "0.44"})
    splits, _ = load_datasets(
        {"train": sample_data},
        validation_fraction=hp.validation_fraction,
        test_fraction=hp.test_fraction,
    )
    assert splits.train and splits.validation and splits.test


def test_channel_problems(tmp_path: Path, sample_data: Path) -> None:
    with pytest.raises(DataError, match="no 'train' channel"):
        load_datasets({"validation": sample_data})
    with pytest.raises(DataError, match="does not exist"):
        load_datasets({"train": tmp_path / "absent"})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_datasets({"train": empty})
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="holds no data file"):
        load_datasets({"train": empty})
    with pytest.raises(DataError, match="were also given"):
        load_datasets({"train": sample_data, "validation": sample_data})

    # The UCI zip extracted in place: newsCorpora.csv is picked over 2pageSessions.csv.
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    write_raw(extracted / "newsCorpora.csv", crafted_lines())
    (extracted / "2pageSessions.csv").write_text("session\n")
    splits, _ = load_datasets({"train": extracted})
    assert len(all_examples(splits)) == 200
    (extracted / "other.csv").write_text("x\n")
    (extracted / "newsCorpora.csv").rename(extracted / "mine.csv")
    with pytest.raises(DataError, match="holds 3 raw files"):
        load_datasets({"train": extracted})


def test_prepared_splits_round_trip_through_channels(tmp_path: Path, sample_data: Path) -> None:
    splits, summary = load(sample_data)
    channels = {}
    for name, items in splits.by_name().items():
        channels[name] = tmp_path / name
        channels[name].mkdir()
        meta = {"split": name, "method": splits.method, "seed": splits.seed, "run": "r1"}
        write_prepared_split(items, channels[name] / f"{name}.parquet", meta)

    loaded, loaded_summary = load_datasets(channels)
    assert loaded == splits
    assert loaded_summary.rows == summary.rows

    examples, meta, _ = read_prepared_split([channels["test"] / "test.parquet"])
    assert meta["labels"] == list(LABELS)
    assert examples == splits.test

    with pytest.raises(DataError, match=r"channel\(s\) \['test'\]"):
        load_datasets({"train": channels["train"], "validation": channels["validation"]})
    other = tmp_path / "other"
    other.mkdir()
    write_prepared_split(splits.test, other / "test.parquet", {"split": "test", "run": "r2"})
    with pytest.raises(DataError, match="different"):
        load_datasets({**channels, "test": other})


@pytest.mark.full_data
def test_full_development_file_splits_cleanly(full_data: Path) -> None:
    splits, summary = load(full_data)
    assert summary.lines_read == 361_875
    assert sum(summary.bad_lines.values()) == 0
    assert sum(summary.rows.values()) + summary.duplicates_removed == 361_875
    parts = splits.by_name()
    stories = {name: {e.story for e in items} for name, items in parts.items()}
    titles = {name: {normalize_title(e.text) for e in items} for name, items in parts.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not stories[a] & stories[b]
        assert not titles[a] & titles[b]
    for name, items in parts.items():
        assert len(titles[name]) == len(items), f"duplicate titles within {name}"
        assert 0.09 < len(items) / sum(summary.rows.values()) < 0.81


title_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\t\n")


@settings(max_examples=60, deadline=None)
@given(titles=st.lists(st.text(title_characters, min_size=1, max_size=40), min_size=1, max_size=20))
def test_any_title_without_tab_or_newline_reads_back_in_its_own_row(titles: list[str]) -> None:
    lines = [uci_line(i + 1, title, CATEGORIES[i % 4], f"s{i}") for i, title in enumerate(titles)]
    rows = parse_raw("".join(line + "\n" for line in lines).encode(), source="generated")
    kept = [title.strip() for title in titles if title.strip()]
    assert rows.titles == kept
    assert rows.bad_counts.get("empty_title", 0) == len(titles) - len(kept)
    assert sum(rows.bad_counts.values()) == len(titles) - len(kept)
    assert rows.lines_read == len(titles)


def test_the_facade_exports_every_name_the_house_imports_from_the_data_package() -> None:
    """Callers import ``training.data`` only; its ``__all__`` holds every name they use."""
    import ast

    import training.data
    from devtools.paths import REPO_ROOT

    imported: set[str] = set()
    for folder in ("training", "tests", "benchmarks", "scripts", "devtools", "deploy"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path.is_relative_to(REPO_ROOT / "training" / "data"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "training.data"
                ):
                    assert node.module == "training.data", f"{path} imports {node.module}"
                    imported.update(alias.name for alias in node.names)
    assert imported <= set(training.data.__all__)
    assert all(hasattr(training.data, name) for name in training.data.__all__)
