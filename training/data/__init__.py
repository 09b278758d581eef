"""From the UCI News Aggregator file (or prepared splits) to train/validation/test examples.

The channel facade lives here: :func:`load_datasets` takes SageMaker-style channels (a raw
UCI file, or the three prepared splits) and returns the splits with their data summary;
callers import from ``training.data`` only. The modules behind it:

- ``examples``: ``Example``, ``Splits``, ``DataSummary`` and the label set (``LABELS``).
- ``raw_file``: the UCI file reader (archives, tab-splitting, bad-line accounting).
- ``splitting``: de-duplication, the story-grouped split and the one check of its options.
- ``prepared``: the prepared-data format (Parquet with labels and provenance in its schema).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.data.examples import (
    CATEGORY_TO_LABEL,
    LABELS,
    SPLIT_NAMES,
    DataSummary,
    Example,
    SplitMethod,
    Splits,
)
from training.data.prepared import PREPARED_SUFFIX, read_prepared_split, write_prepared_split
from training.data.raw_file import (
    BAD_LINE_KINDS,
    RAW_SUFFIXES,
    UCI_MEMBER_NAME,
    check_bad_fraction,
    parse_raw,
    read_raw_bytes,
    uci_member,
)
from training.data.splitting import (
    check_split_options,
    deduplicate,
    normalize_title,
    split_examples,
)
from training.errors import DataError

__all__ = [
    "CATEGORY_TO_LABEL",
    "LABELS",
    "SPLIT_NAMES",
    "UCI_MEMBER_NAME",
    "DataSummary",
    "Example",
    "SplitMethod",
    "Splits",
    "check_split_options",
    "deduplicate",
    "load_datasets",
    "load_input",
    "load_raw_file",
    "normalize_title",
    "parse_raw",
    "read_prepared_split",
    "read_raw_bytes",
    "split_examples",
    "uci_member",
    "write_prepared_split",
]

logger = logging.getLogger(__name__)


def _require_train_channel(channels: Mapping[str, Path]) -> Path:
    """The 'train' channel's path; without one there is nothing to train on."""
    if "train" not in channels:
        raise DataError(
            f"no 'train' input channel (channels given: {sorted(channels) or 'none'}): give "
            "the UCI newsCorpora.csv (or .csv.xz/.csv.gz/.zip, or a prepared train split) as "
            "the 'train' channel; with no 'train' channel there is nothing to train on"
        )
    return channels["train"]


def load_datasets(
    channels: Mapping[str, Path],
    *,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split: SplitMethod = "story",
    max_bad_fraction: float = 0.001,
    progress: bool = False,
) -> tuple[Splits, DataSummary]:
    """Load the splits from SageMaker-style channels (channel name -> directory or file).

    ``channels["train"]`` is required. If it holds one raw UCI file (``*.csv``, ``*.csv.xz``,
    ``*.csv.gz`` or the UCI ``*.zip``), that file is read, validated, de-duplicated and split
    into all three splits. If it holds a prepared split (written by ``python -m
    training.prepare``), validation and test come from the ``validation`` and ``test``
    channels. Every problem raises :class:`DataError` saying what is wrong and what to do.
    """
    train_files = _channel_files("train", _require_train_channel(channels))
    if any(path.name.endswith(PREPARED_SUFFIX) for path in train_files):
        return _load_prepared(channels)
    extra = sorted(name for name in ("validation", "test") if name in channels)
    if extra:
        raise DataError(
            f"the 'train' channel holds a raw file, which is split into train, validation and "
            f"test itself, but channel(s) {extra} were also given. Either drop them or give "
            "prepared splits (python -m training.prepare) in all three channels."
        )
    raw_path = _single_raw_file("train", channels["train"], train_files)
    splits, summary = load_raw_file(
        raw_path,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        split=split,
        max_bad_fraction=max_bad_fraction,
        progress=progress,
    )
    return splits, summary


def load_input(
    path: Path, *, seed: int = 42, split: SplitMethod = "story", progress: bool = False
) -> tuple[Splits, DataSummary]:
    """What the command-line tools take as ``--input``: a raw file or a prepared directory.

    A directory with ``train``, ``validation`` and ``test`` subdirectories is read as the
    output of ``python -m training.prepare`` (``seed`` and ``split`` are then those it used).
    """
    if path.is_dir() and all((path / name).is_dir() for name in SPLIT_NAMES):
        return load_datasets({name: path / name for name in SPLIT_NAMES})
    return load_datasets({"train": path}, seed=seed, split=split, progress=progress)


def load_raw_file(
    path: Path,
    *,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split: SplitMethod = "story",
    max_bad_fraction: float = 0.001,
    progress: bool = False,
    channel: str = "train",
) -> tuple[Splits, DataSummary]:
    """Read, validate, de-duplicate and split one raw UCI file.

    The summary's ``sources`` maps ``channel`` to the sha256 of the file as given.
    """
    check_split_options(validation_fraction, test_fraction, split, max_bad_fraction)
    data = read_raw_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    rows = parse_raw(data, source=str(path), progress=progress)
    check_bad_fraction(rows, source=str(path), max_bad_fraction=max_bad_fraction)
    examples, removed, conflicts = deduplicate(
        Example(text=t, label=lab, story=s, publisher=p)
        for t, lab, s, p in zip(
            rows.titles, rows.labels, rows.stories, rows.publishers, strict=True
        )
    )
    splits = split_examples(
        examples,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        method=split,
    )
    summary = DataSummary(
        sources={channel: sha},
        rows={name: len(items) for name, items in splits.by_name().items()},
        bad_lines={kind: rows.bad_counts.get(kind, 0) for kind in BAD_LINE_KINDS},
        lines_read=rows.lines_read,
        duplicates_removed=removed,
        duplicate_label_conflicts=conflicts,
        bad_line_examples={kind: list(lines) for kind, lines in rows.bad_examples.items()},
    )
    logger.info(
        "%s: %d lines, %d malformed, %d duplicate titles removed; %s split (seed %d): %s",
        path.name,
        rows.lines_read,
        sum(rows.bad_counts.values()),
        removed,
        split,
        seed,
        ", ".join(f"{name} {count}" for name, count in summary.rows.items()),
    )
    return splits, summary


# --- channels -------------------------------------------------------------------------------


def _channel_files(channel: str, location: Path) -> list[Path]:
    """The data files of a channel: the path itself, or the non-hidden files below it."""
    if location.is_file():
        return [location]
    if not location.exists():
        raise DataError(
            f"the '{channel}' channel's path {location} does not exist: check the input "
            "channel's S3 URI (or the local path given)"
        )
    files = sorted(
        path
        for path in location.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(location).parts)
    )
    if not files:
        raise DataError(
            f"the '{channel}' channel ({location}) is empty: put the UCI newsCorpora.csv "
            "(or .csv.xz/.csv.gz/.zip), or a prepared split, there"
        )
    return files


def _single_raw_file(channel: str, location: Path, files: Sequence[Path]) -> Path:
    raw = [path for path in files if path.name.lower().endswith(RAW_SUFFIXES)]
    if len(raw) > 1:
        # The UCI zip extracted as is also holds 2pageSessions.csv, which is not needed.
        named = [path for path in raw if path.name.lower().startswith("newscorpora")]
        raw = named or raw
    if len(raw) == 1:
        return raw[0]
    listed = ", ".join(path.name for path in files[:10])
    if not raw:
        raise DataError(
            f"the '{channel}' channel ({location}) holds no data file this job reads "
            f"({listed}): expected one of {', '.join('*' + s for s in RAW_SUFFIXES)} "
            f"or prepared *{PREPARED_SUFFIX} splits"
        )
    raise DataError(
        f"the '{channel}' channel ({location}) holds {len(raw)} raw files ({listed}); "
        "give exactly one newsCorpora.csv"
    )


def _load_prepared(channels: Mapping[str, Path]) -> tuple[Splits, DataSummary]:
    missing = [name for name in ("validation", "test") if name not in channels]
    if missing:
        raise DataError(
            f"the 'train' channel holds a prepared split, so channel(s) {missing} must hold the "
            "matching prepared splits written by the same `python -m training.prepare` run"
        )
    parts: dict[str, list[Example]] = {}
    metas: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for name in SPLIT_NAMES:
        files = [
            p for p in _channel_files(name, channels[name]) if p.name.endswith(PREPARED_SUFFIX)
        ]
        if not files:
            raise DataError(
                f"the '{name}' channel ({channels[name]}) holds no *{PREPARED_SUFFIX} file, but "
                "the 'train' channel holds a prepared split: give all three prepared splits"
            )
        parts[name], metas[name], sources[name] = read_prepared_split(files)

    train_meta = metas["train"]
    for name in ("validation", "test"):
        if metas[name].get("run") != train_meta.get("run"):
            raise DataError(
                f"the '{name}' split was written by a different `training.prepare` run than "
                "the 'train' split (their provenance differs): give splits from one run"
            )
    splits = Splits(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        method=str(train_meta.get("method", "unknown")),
        seed=int(train_meta.get("seed", -1)),
    )
    raw_summary = train_meta.get("summary", {})
    summary = DataSummary(
        sources=sources,
        rows={name: len(items) for name, items in parts.items()},
        bad_lines=dict(raw_summary.get("bad_lines", {})),
        lines_read=sum(len(items) for items in parts.values()),
        duplicates_removed=int(raw_summary.get("duplicates_removed", 0)),
        duplicate_label_conflicts=int(raw_summary.get("duplicate_label_conflicts", 0)),
    )
    return splits, summary
