"""The UCI file reader: raw bytes -> good rows, with every bad line counted and located.

The raw file is ``newsCorpora.csv`` exactly as UCI ships it: UTF-8, tab-separated, no header,
NO quoting, 8 columns (``ID TITLE URL PUBLISHER CATEGORY STORY HOSTNAME TIMESTAMP``). Titles
hold literal ``"`` characters, so the reader splits each line on tabs itself instead of using
a CSV dialect: a quote can never merge lines or shift columns. A line that does not have
exactly 8 fields, an unknown category, an empty title or bytes that are not UTF-8 is a *bad
line*: counted by kind, reported with its line number, and above ``max_bad_fraction`` the
whole load fails.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from training.data.examples import CATEGORY_TO_LABEL
from training.errors import DataError

logger = logging.getLogger(__name__)

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

_BOM = b"\xef\xbb\xbf"
_PROGRESS_EVERY_LINES = 20_000


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


def uci_member(archive: zipfile.ZipFile, *, source: str, advice: str) -> str:
    """The member of ``archive`` that is UCI's newsCorpora.csv, in any folder; without one,
    a DataError naming ``source``, what it holds instead, and ``advice``."""
    names = archive.namelist()
    for name in names:
        if name.rsplit("/", 1)[-1] == UCI_MEMBER_NAME:
            return name
    raise DataError(
        f"{source} holds no {UCI_MEMBER_NAME} (it holds: {', '.join(names[:10]) or 'nothing'})"
        f"{advice}"
    )


def _read_zip_member(path: Path, limit: int) -> bytes:
    with zipfile.ZipFile(path) as archive:
        advice = ". Give the UCI News Aggregator zip or the extracted newsCorpora.csv."
        member = uci_member(archive, source=str(path), advice=advice)
        with archive.open(member) as stream:
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


def check_bad_fraction(rows: RawRows, *, source: str, max_bad_fraction: float) -> None:
    """Fail when no row is good or more than ``max_bad_fraction`` of the lines are bad; else
    log what was skipped."""
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
