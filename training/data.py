"""From the UCI News Aggregator file (or prepared splits) to train/validation/test examples.

The raw file is ``newsCorpora.csv`` exactly as UCI ships it: UTF-8, tab-separated, no header,
NO quoting, 8 columns (``ID TITLE URL PUBLISHER CATEGORY STORY HOSTNAME TIMESTAMP``). Titles
hold literal ``"`` characters, so the reader splits each line on tabs itself instead of using
a CSV dialect: a quote can never merge lines or shift columns. A line that does not have
exactly 8 fields, an unknown category, an empty title or bytes that are not UTF-8 is a *bad
line*: counted by kind, reported with its line number, and above ``max_bad_fraction`` the
whole load fails.

Splits are grouped by STORY (rows of one story are paraphrases of one event, so a random row
split leaks near-duplicates into the test set), stratified by each story's majority label and
deterministic for a seed. Titles are de-duplicated on a normalized form before splitting, so an
identical title can neither repeat within a split nor appear in two splits.

Prepared splits (``python -m training.prepare``) are Parquet files that carry the label names
and split provenance in their schema metadata, so the mapping travels with the data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import lzma
import random
import unicodedata
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from training.errors import DataError, HyperparameterError

logger = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("business", "entertainment", "health", "science_and_technology")
CATEGORY_TO_LABEL: dict[str, str] = {
    "b": "business",
    "e": "entertainment",
    "m": "health",
    "t": "science_and_technology",
}
COLUMNS: tuple[str, ...] = (
    "ID",
    "TITLE",
    "URL",
    "PUBLISHER",
    "CATEGORY",
    "STORY",
    "HOSTNAME",
    "TIMESTAMP",
)
SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
RAW_SUFFIXES: tuple[str, ...] = (".csv", ".csv.xz", ".csv.gz", ".zip")
UCI_MEMBER_NAME = "newsCorpora.csv"
# Uncompressed bytes a raw file may hold: 10x the UCI file (about 100 MB), so a small archive
# that expands to gigabytes (a "zip bomb") fails fast instead of exhausting memory.
MAX_RAW_BYTES = 1024 * 1024 * 1024
_READ_CHUNK_BYTES = 4 * 1024 * 1024

# Kinds of malformed lines, in the order reports list them.
BAD_LINE_KINDS: tuple[str, ...] = (
    "wrong_column_count",
    "unknown_category",
    "empty_title",
    "undecodable",
    "blank_line",
)
# How many offending line numbers an error message names per kind.
SHOWN_LINE_NUMBERS = 5

PREPARED_SUFFIX = ".parquet"
PREPARED_FORMAT_VERSION = 1
# Key of the JSON document in each Parquet file's schema metadata.
PREPARED_METADATA_KEY = b"news_classifier"
PREPARED_COLUMNS: tuple[str, ...] = ("text", "label", "story", "publisher")

_BOM = b"\xef\xbb\xbf"
_PROGRESS_EVERY_LINES = 20_000

SplitMethod = Literal["story", "random"]


@dataclass(frozen=True, slots=True)
class Example:
    """One headline with its label; ``story`` and ``publisher`` are "" when unknown."""

    text: str
    label: str
    story: str = ""
    publisher: str = ""


@dataclass(frozen=True)
class Splits:
    """The three splits and how they were made."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
    method: str
    seed: int
    labels: tuple[str, ...] = LABELS

    def by_name(self) -> dict[str, list[Example]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


@dataclass(frozen=True)
class DataSummary:
    """Provenance and data-quality figures that go into reports and the model's metadata."""

    sources: dict[str, str]
    rows: dict[str, int]
    bad_lines: dict[str, int]
    # Input lines read (raw input) or rows read (prepared input).
    lines_read: int = 0
    # Rows dropped because their normalized title repeats an earlier row's.
    duplicates_removed: int = 0
    # Of those, rows whose label differed from the kept row's label.
    duplicate_label_conflicts: int = 0
    # Kind of malformed line -> the first offending line numbers (1-based).
    bad_line_examples: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RawRows:
    """Good rows of a raw file, column-wise, plus the bad-line accounting."""

    titles: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    stories: list[str] = field(default_factory=list)
    publishers: list[str] = field(default_factory=list)
    lines_read: int = 0
    bad_counts: Counter[str] = field(default_factory=Counter)
    bad_examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add_bad(self, kind: str, line_number: int) -> None:
        self.bad_counts[kind] += 1
        if len(self.bad_examples[kind]) < SHOWN_LINE_NUMBERS:
            self.bad_examples[kind].append(line_number)


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
    if "train" not in channels:
        raise DataError(
            "no 'train' channel: give the UCI newsCorpora.csv (or a prepared train split) "
            f"as the 'train' input channel (channels given: {sorted(channels) or 'none'})"
        )
    train_files = _channel_files("train", channels["train"])
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
    _check_split_options(validation_fraction, test_fraction, split, max_bad_fraction)
    data = read_raw_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    rows = parse_raw(data, source=str(path), progress=progress)
    _check_bad_fraction(rows, source=str(path), max_bad_fraction=max_bad_fraction)
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


# --- reading the raw file -------------------------------------------------------------------


def read_raw_bytes(path: Path, *, limit: int = MAX_RAW_BYTES) -> bytes:
    """The uncompressed bytes of a raw file: ``.csv``, ``.csv.xz``, ``.csv.gz`` or UCI ``.zip``.

    The uncompressed UCI file is about 100 MB, so it is read whole: splitting bytes in memory
    is several times faster than iterating a decompressing stream line by line. Archives are
    decompressed as a stream that stops at ``limit`` bytes, so a small "zip bomb" in the
    channel fails in seconds instead of filling the instance's memory.
    """
    if not path.exists():
        raise DataError(f"{path} does not exist: give the path of the UCI newsCorpora.csv")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            return _read_zip_member(path, limit)
        if name.endswith(".xz"):
            with lzma.open(path) as stream:
                return _read_capped(stream, path, limit)
        if name.endswith(".gz"):
            with gzip.open(path) as stream:
                return _read_capped(stream, path, limit)
        with path.open("rb") as stream:
            return _read_capped(stream, path, limit)
    except (lzma.LZMAError, gzip.BadGzipFile, zlib.error, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a valid {path.suffix} archive ({exc}); download it again "
            "(python -m training.download) or give the uncompressed newsCorpora.csv"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_capped(stream: _Readable, path: Path, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise DataError(
                f"{path} holds more than {limit // 2**20} MiB of data (uncompressed); the UCI "
                "file has about 100 MB. Give the UCI newsCorpora.csv (or an archive of it), "
                "not an archive that expands without bound."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _read_zip_member(path: Path, limit: int) -> bytes:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        matches = [n for n in names if n.rsplit("/", 1)[-1] == UCI_MEMBER_NAME]
        if not matches:
            raise DataError(
                f"{path} holds no {UCI_MEMBER_NAME} (it holds: "
                f"{', '.join(names[:10]) or 'nothing'}). Give the UCI News Aggregator zip or "
                "the extracted newsCorpora.csv."
            )
        with archive.open(matches[0]) as stream:
            return _read_capped(stream, path, limit)


def parse_raw(data: bytes, *, source: str, progress: bool = False) -> RawRows:
    """Split raw bytes into good rows and counted bad lines; never shift a column."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    lines = _decode_lines(data)
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line is None or line.strip() for line in lines):
        raise DataError(f"{source} is empty: expected the UCI newsCorpora.csv, one article a line")
    _check_layout(lines, source)

    from tqdm import tqdm

    rows = RawRows(lines_read=len(lines))
    titles, labels, stories, publishers = rows.titles, rows.labels, rows.stories, rows.publishers
    n_columns = len(COLUMNS)
    with tqdm(
        total=len(lines), desc="reading", unit=" lines", disable=not progress, unit_scale=True
    ) as bar:
        # Chunks keep the progress bar out of the per-line loop, which dominates reading time.
        for start in range(0, len(lines), _PROGRESS_EVERY_LINES):
            chunk = lines[start : start + _PROGRESS_EVERY_LINES]
            for line_number, line in enumerate(chunk, start + 1):
                if line is None:
                    rows.add_bad("undecodable", line_number)
                    continue
                # A CRLF line's "\r" ends up in TIMESTAMP, which is not used.
                fields = line.split("\t")
                if len(fields) != n_columns:
                    kind = "wrong_column_count" if line.strip() else "blank_line"
                    rows.add_bad(kind, line_number)
                    continue
                label = CATEGORY_TO_LABEL.get(fields[4])
                if label is None:
                    rows.add_bad("unknown_category", line_number)
                    continue
                title = fields[1].strip()
                if not title:
                    rows.add_bad("empty_title", line_number)
                    continue
                titles.append(title)
                labels.append(label)
                stories.append(fields[5].strip())
                publishers.append(fields[3].strip())
            bar.update(len(chunk))
    return rows


def _decode_lines(data: bytes) -> list[str | None]:
    """The file's lines, ``None`` for a line that is not UTF-8.

    Lines are split on "\\n" only: ``str.splitlines()`` would also break on \\x1c, \\x85 or
    U+2028 inside a title (the UCI file has none, an edited copy may) and shift the rest of
    that line into a new row.
    """
    try:
        # Fast path: one C-level decode of the whole file.
        return list(data.decode("utf-8").split("\n"))
    except UnicodeDecodeError:
        pass
    lines: list[str | None] = []
    for raw_line in data.split(b"\n"):
        try:
            lines.append(raw_line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(None)
    return lines


def _check_layout(lines: Sequence[str | None], source: str) -> None:
    """Fail fast, with a specific message, on a header row or a wrong delimiter."""
    head = [line.removesuffix("\r") for line in lines[:200] if line and line.strip()]
    if not head:
        return
    if not any("\t" in line for line in head):
        first = head[0]
        guessed = max((",", ";", "|"), key=first.count)
        hint = f" (it looks {_DELIMITER_NAMES[guessed]}-separated)" if first.count(guessed) else ""
        raise DataError(
            f"{source} is not tab-separated: none of its first {len(head)} lines holds a tab"
            f"{hint}. Give UCI's newsCorpora.csv as shipped: tab-separated, 8 columns, no "
            "header, no quoting (do not re-save it with a spreadsheet or pandas.to_csv)."
        )
    first_fields = {f.strip().upper() for f in head[0].split("\t")}
    if len(first_fields & set(COLUMNS)) >= 2:
        raise DataError(
            f"{source} starts with a header row ({head[0][:80]!r}); UCI's newsCorpora.csv has "
            "none. Remove the first line (e.g. `tail -n +2`) or use the file as UCI ships it."
        )


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "|": "pipe"}


def _check_bad_fraction(rows: RawRows, *, source: str, max_bad_fraction: float) -> None:
    bad = sum(rows.bad_counts.values())
    if not rows.titles:
        raise DataError(
            f"{source}: none of its {rows.lines_read:,} lines is a valid article "
            f"({_describe_bad(rows)}). Expected UCI's newsCorpora.csv: tab-separated, "
            "8 columns, category b/e/m/t in column 5."
        )
    if bad == 0:
        return
    share = bad / rows.lines_read
    if share > max_bad_fraction:
        raise DataError(
            f"{source}: {bad:,} of {rows.lines_read:,} lines ({share:.2%}) are malformed, "
            f"more than max_bad_fraction={max_bad_fraction:g} allows: {_describe_bad(rows)}. "
            "Fix or remove those lines (the file must be tab-separated, 8 columns, no quoting, "
            "category b/e/m/t), or raise max_bad_fraction to skip them."
        )
    logger.warning("%s: skipped %d malformed lines: %s", source, bad, _describe_bad(rows))


def _describe_bad(rows: RawRows) -> str:
    parts = []
    for kind in BAD_LINE_KINDS:
        count = rows.bad_counts.get(kind, 0)
        if count:
            numbers = ", ".join(str(n) for n in rows.bad_examples[kind])
            more = ", ..." if count > len(rows.bad_examples[kind]) else ""
            parts.append(f"{kind} {count:,} (line {numbers}{more})")
    return "; ".join(parts)


# --- de-duplication and splitting ---------------------------------------------------------


def normalize_title(title: str) -> str:
    """The form under which two titles count as the same: NFKC, case-folded, single-spaced."""
    if not title.isascii():  # NFKC changes nothing in ASCII and costs a third of the time
        title = unicodedata.normalize("NFKC", title)
    return " ".join(title.casefold().split())


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int, int]:
    """Keep the first example of each normalized title.

    Returns the kept examples (in input order), how many were removed, and how many of the
    removed ones carried a different label from the kept one.
    """
    kept: list[Example] = []
    label_of: dict[str, str] = {}
    removed = conflicts = 0
    for example in examples:
        key = normalize_title(example.text)
        first_label = label_of.get(key)
        if first_label is None:
            label_of[key] = example.label
            kept.append(example)
            continue
        removed += 1
        if first_label != example.label:
            conflicts += 1
    return kept, removed, conflicts


def split_examples(
    examples: Sequence[Example],
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    method: SplitMethod = "story",
) -> Splits:
    """Split de-duplicated examples into train/validation/test, grouped and stratified.

    With ``method="story"`` every STORY lands in exactly one split (an example without a story
    is a group of its own); with ``"random"`` every example is its own group. Groups are
    stratified by their majority label: per label, groups are shuffled by ``seed`` and laid
    end to end, and a group goes to the split in which its middle row falls (test first, then
    validation, then train), so each split gets its share of every label up to one group.
    """
    _check_split_options(validation_fraction, test_fraction, method, 0.0)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        key = example.story if method == "story" and example.story else f"\x00row{index}"
        groups[key].append(index)

    by_label: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        label_counts = Counter(examples[i].label for i in groups[key])
        majority = max(LABELS, key=lambda label: label_counts.get(label, 0))
        by_label[majority].append(key)

    rng = random.Random(seed)
    assigned: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for label in LABELS:
        keys = by_label.get(label, [])
        rng.shuffle(keys)
        total = sum(len(groups[key]) for key in keys)
        test_end = total * test_fraction
        validation_end = test_end + total * validation_fraction
        position = 0.0
        for key in keys:
            size = len(groups[key])
            middle = position + size / 2
            if middle < test_end:
                target = "test"
            elif middle < validation_end:
                target = "validation"
            else:
                target = "train"
            assigned[target].extend(groups[key])
            position += size

    parts = {name: [examples[i] for i in sorted(indices)] for name, indices in assigned.items()}
    empty = [name for name, items in parts.items() if not items]
    if empty:
        raise DataError(
            f"{len(examples):,} examples in {len(groups):,} groups are too few to fill the "
            f"{'/'.join(empty)} split(s) with validation_fraction={validation_fraction:g} and "
            f"test_fraction={test_fraction:g}: give more data or larger fractions."
        )
    return Splits(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        method=method,
        seed=seed,
    )


def _check_split_options(
    validation_fraction: float, test_fraction: float, split: str, max_bad_fraction: float
) -> None:
    if split not in ("story", "random"):
        raise HyperparameterError(f"split must be 'story' or 'random', not {split!r}")
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1):
        raise HyperparameterError(
            "validation_fraction and test_fraction must each be between 0 and 1 (exclusive), "
            f"got {validation_fraction:g} and {test_fraction:g}"
        )
    if validation_fraction + test_fraction >= 1:
        raise HyperparameterError(
            "validation_fraction + test_fraction must leave rows for training (sum below 1), "
            f"got {validation_fraction + test_fraction:g}"
        )
    if not 0 <= max_bad_fraction <= 1:
        raise HyperparameterError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction:g}")


# --- channels and prepared splits ---------------------------------------------------------


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


def read_prepared_split(files: Sequence[Path]) -> tuple[list[Example], dict[str, Any], str]:
    """Read one prepared split (one or more Parquet files): examples, metadata, sha256."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    examples: list[Example] = []
    meta: dict[str, Any] = {}
    digest = hashlib.sha256()
    for path in files:
        try:
            digest.update(path.read_bytes())
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read the prepared split {path}: {exc}") from exc
        raw_meta = (table.schema.metadata or {}).get(PREPARED_METADATA_KEY)
        if raw_meta is None:
            raise DataError(
                f"{path} is not a split written by `python -m training.prepare` (no "
                f"{PREPARED_METADATA_KEY.decode()} metadata): prepare the data again"
            )
        meta = json.loads(raw_meta)
        if meta.get("format_version") != PREPARED_FORMAT_VERSION:
            raise DataError(
                f"{path} is in prepared format {meta.get('format_version')}; this code reads "
                f"format {PREPARED_FORMAT_VERSION}: prepare the data again with this version"
            )
        if tuple(meta.get("labels", ())) != LABELS:
            raise DataError(
                f"{path} has labels {meta.get('labels')}; this code trains on {list(LABELS)}"
            )
        missing = [c for c in PREPARED_COLUMNS if c not in table.column_names]
        if missing:
            raise DataError(f"{path} lacks column(s) {missing}: prepare the data again")
        columns = [table.column(name).to_pylist() for name in PREPARED_COLUMNS]
        for text, label, story, publisher in zip(*columns, strict=True):
            if label not in LABELS or not text:
                raise DataError(
                    f"{path} holds a row with label {label!r} and text {text!r}: "
                    "prepare the data again"
                )
            examples.append(Example(text=text, label=label, story=story, publisher=publisher))
    return examples, meta, digest.hexdigest()


def write_prepared_split(
    examples: Sequence[Example], path: Path, metadata: Mapping[str, Any]
) -> None:
    """Write one split as Parquet, with ``metadata`` (JSON) and the labels in its schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    document = {
        "format_version": PREPARED_FORMAT_VERSION,
        "labels": list(LABELS),
        "categories": CATEGORY_TO_LABEL,
        **metadata,
    }
    table = pa.table(
        {
            "text": [e.text for e in examples],
            "label": pa.array([e.label for e in examples]).dictionary_encode(),
            "story": [e.story for e in examples],
            "publisher": [e.publisher for e in examples],
        }
    )
    table = table.replace_schema_metadata({PREPARED_METADATA_KEY: json.dumps(document)})
    pq.write_table(table, path, compression="zstd")
