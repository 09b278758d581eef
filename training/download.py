"""``python -m training.download``: fetch the UCI News Aggregator zip, extract and check it.

    python -m training.download --dest data/full

leaves ``data/full/newsCorpora.csv`` (about 100 MB) once it has been read back with the
project's reader: every line well-formed, the expected number of rows, all four categories.
The zip is downloaded into a temporary file beside the destination and removed afterwards;
nothing is left in ``--dest`` when any step fails.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

from training.data import LABELS, UCI_MEMBER_NAME, parse_raw, uci_member
from training.errors import DataError, JobError

logger = logging.getLogger(__name__)

UCI_URL = "https://archive.ics.uci.edu/static/public/359/news+aggregator.zip"
# Lines of newsCorpora.csv in the zip UCI has published since 2016.
EXPECTED_ROWS = 422_937
# The same tolerance as training's default max_bad_fraction.
MAX_BAD_FRACTION = 0.001
CHUNK_BYTES = 1 << 20


def download(
    dest: Path,
    *,
    url: str = UCI_URL,
    expected_rows: int | None = EXPECTED_ROWS,
    timeout: float = 60.0,
    progress: bool = False,
) -> Path:
    """Download ``url`` (a zip holding ``newsCorpora.csv``); leave the checked CSV in ``dest``."""
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / UCI_MEMBER_NAME
    try:
        with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as staging_name:
            staging = Path(staging_name)
            archive_path = staging / "news_aggregator.zip"
            _fetch(url, archive_path, timeout=timeout, progress=progress)
            extracted = _extract(archive_path, staging, url)
            rows, sha = check_file(extracted, expected_rows=expected_rows, progress=progress)
            extracted.replace(target)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    logger.info("wrote %s: %d rows, sha256 %s", target, rows, sha)
    return target


def _fetch(url: str, path: Path, *, timeout: float, progress: bool) -> None:
    from tqdm import tqdm

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DataError(f"--url must be an http(s) URL, not {url!r}")
    # Schemes are checked above, which is what S310 asks for.
    request = urllib.request.Request(url, headers={"User-Agent": "news-classifier/0.1"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                path.open("wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc="downloading",
                    disable=not progress,
                ) as bar,
            ):
                _copy(response, out, bar.update)
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"downloading {url} failed with HTTP {exc.code} {exc.reason}: check the URL, or "
            "download the zip from https://archive.ics.uci.edu/dataset/359/news+aggregator "
            "yourself and give it to `python -m training.prepare --input`"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"cannot reach {url} ({reason}). This needs internet access: on a machine with "
            "it, download the zip from https://archive.ics.uci.edu/dataset/359/news+aggregator "
            "and copy it (or the extracted newsCorpora.csv) here."
        ) from exc


def _copy(source: IO[bytes], out: IO[bytes], advance: Callable[[int], object]) -> None:
    while chunk := source.read(CHUNK_BYTES):
        out.write(chunk)
        advance(len(chunk))


def _extract(archive_path: Path, staging: Path, url: str) -> Path:
    try:
        with zipfile.ZipFile(archive_path) as archive:
            member = uci_member(
                archive, source=f"the zip from {url}", advice=": is the URL the News Aggregator's?"
            )
            extracted = staging / UCI_MEMBER_NAME
            with archive.open(member) as source, extracted.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"what {url} returned is not a zip file ({exc}): the download may have been cut "
            "short or the URL may point to a web page; try again"
        ) from exc
    return extracted


def check_file(
    path: Path, *, expected_rows: int | None = EXPECTED_ROWS, progress: bool = False
) -> tuple[int, str]:
    """Read ``path`` with the project's reader; return (rows, sha256) or raise DataError."""
    data = path.read_bytes()
    rows = parse_raw(data, source=str(path), progress=progress)
    bad = sum(rows.bad_counts.values())
    if bad:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(rows.bad_counts.items()))
        if bad > MAX_BAD_FRACTION * rows.lines_read:
            raise DataError(
                f"the downloaded {UCI_MEMBER_NAME} has {bad:,} malformed lines ({kinds}): the "
                "download is damaged or UCI changed the file; try again"
            )
        # Training skips (and reports) this few; the file is still the one UCI publishes.
        logger.warning("%s: %d malformed lines (%s)", path, bad, kinds)
    if expected_rows is not None and rows.lines_read != expected_rows:
        raise DataError(
            f"the downloaded {UCI_MEMBER_NAME} has {rows.lines_read:,} lines, expected "
            f"{expected_rows:,}: the download is incomplete or UCI changed the file (pass "
            "--expected-rows 0 to accept it anyway)"
        )
    present = Counter(rows.labels)
    missing = [label for label in LABELS if not present.get(label)]
    if missing:
        raise DataError(f"the downloaded {UCI_MEMBER_NAME} has no rows of {missing}")
    return len(rows.titles), hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.download",
        description="Download the UCI News Aggregator data and check it (needs internet).",
    )
    parser.add_argument("--dest", type=Path, required=True, help="directory for newsCorpora.csv")
    parser.add_argument("--url", default=UCI_URL, help="zip holding newsCorpora.csv")
    parser.add_argument(
        "--expected-rows",
        type=int,
        default=EXPECTED_ROWS,
        help="rows the file must have; 0 skips the check",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="network timeout, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        target = download(
            args.dest,
            url=args.url,
            expected_rows=args.expected_rows or None,
            timeout=args.timeout,
            progress=True,
        )
    except JobError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"error: cannot write to {args.dest}: {exc}\n")
        return 1
    sys.stderr.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
