"""``python -m client``: classify a file or stdin and write JSON Lines or CSV.

Exit codes: 0 success, 1 the service or the network failed (the error code and request id are
printed), 2 bad usage or unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TextIO

from client.api import API_PATH, SERVER_PATH, ApiClient
from client.base import DEFAULT_MAX_BATCH_SIZE, BaseClient
from client.endpoint import EndpointClient
from client.errors import ClassifierError
from client.models import Prediction
from client.retry import RetryPolicy

API_KEY_ENV = "NEWS_CLASSIFIER_API_KEY"
EXIT_OK, EXIT_SERVICE_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
INPUT_FORMATS = ("lines", "csv", "jsonl")
OUTPUT_FORMATS = ("jsonl", "csv")


class InputError(Exception):
    """The input cannot be read as the requested format."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="Classify news headlines with the API, a model server or a SageMaker endpoint.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--api-url", help="API Gateway stage URL (POSTs to {url}/classify)")
    target.add_argument("--server-url", help="model server URL (POSTs to {url}/invocations)")
    target.add_argument("--endpoint-name", help="SageMaker endpoint name (boto3 InvokeEndpoint)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"API Gateway key, sent as x-api-key (default: ${API_KEY_ENV})",
    )
    parser.add_argument("--region", help="AWS region of the endpoint (default: AWS config)")
    parser.add_argument(
        "--endpoint-url", help="override the sagemaker-runtime URL (a local stand-in)"
    )
    parser.add_argument(
        "input", nargs="?", default="-", help="input file, or - for stdin (default)"
    )
    parser.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        help="lines (one text per line), csv or jsonl (default: by file extension, else lines)",
    )
    parser.add_argument(
        "--column", default="text", help="CSV column or JSON Lines key holding the text"
    )
    parser.add_argument("-o", "--output", default="-", help="output file, or - for stdout")
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="jsonl or csv (default: from the output extension, else jsonl)",
    )
    parser.add_argument("--top-k", type=_positive_int, default=1, help="labels per text")
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help="most texts per request",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument(
        "--retries", type=int, default=RetryPolicy().max_retries, help="retries on 429/503"
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        texts = read_texts(
            args.input, args.input_format or _format_from_name(args.input), args.column
        )
    except (InputError, OSError, UnicodeDecodeError) as exc:
        _say(f"error: cannot read {args.input}: {exc}")
        return EXIT_USAGE
    output_format = args.output_format or ("csv" if args.output.endswith(".csv") else "jsonl")
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        client = _make_client(args)
    except (ImportError, ValueError) as exc:  # no boto3, no AWS region
        _say(f"error: {exc}")
        return EXIT_USAGE
    try:
        with _open_output(args.output) as out, client:
            writer = PredictionWriter(out, output_format, args.top_k)
            progress = Progress(len(texts), enabled=show_progress)
            for chunk in client.iter_chunks(texts, top_k=args.top_k):
                writer.write(chunk)
                progress.advance(len(chunk))
            progress.finish()
    except ClassifierError as exc:
        _say(f"\nerror: {exc}")
        return EXIT_SERVICE_ERROR
    except OSError as exc:
        _say(f"error: cannot write {args.output}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def read_texts(source: str, input_format: str, column: str) -> list[str]:
    """The texts of a file (or ``-`` for stdin) in ``lines``, ``csv`` or ``jsonl`` format."""
    if source == "-":
        return parse_texts(sys.stdin, input_format, column)
    with Path(source).open(encoding="utf-8", newline="") as handle:
        return parse_texts(handle, input_format, column)


def parse_texts(handle: TextIO, input_format: str, column: str) -> list[str]:
    if input_format == "lines":
        # Blank lines (a trailing newline, separators) carry no headline.
        return [line.strip() for line in handle if line.strip()]
    if input_format == "csv":
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise InputError(f"no column {column!r} in the CSV header {reader.fieldnames}")
        return _non_empty((row[column] for row in reader), first_row=2)
    if input_format == "jsonl":
        values = []
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"line {number} is not JSON: {exc}") from exc
            if isinstance(record, str):
                values.append(record)
            elif isinstance(record, dict) and isinstance(record.get(column), str):
                values.append(record[column])
            else:
                raise InputError(f"line {number} has no string {column!r}")
        return _non_empty(values, first_row=1)
    raise InputError(f"unknown input format {input_format!r}")


def _non_empty(values: Iterable[str | None], *, first_row: int) -> list[str]:
    texts = []
    for number, value in enumerate(values, start=first_row):
        if value is None or not value.strip():
            # Skipping would shift every later prediction against its row; refuse instead.
            raise InputError(f"row {number} has an empty text")
        texts.append(value)
    return texts


class PredictionWriter:
    """Writes predictions as JSON Lines or CSV, one record per input text."""

    def __init__(self, out: TextIO, output_format: str, top_k: int) -> None:
        self._out = out
        self._format = output_format
        self._top_k = top_k
        self._csv: csv.DictWriter[str] | None = None
        if output_format == "csv":
            fields = ["text", "label", "score"]
            for rank in range(2, top_k + 1):
                fields += [f"label_{rank}", f"score_{rank}"]
            self._csv = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
            self._csv.writeheader()

    def write(self, predictions: Iterable[Prediction]) -> None:
        for prediction in predictions:
            if self._csv is not None:
                row: dict[str, object] = {
                    "text": prediction.text,
                    "label": prediction.label,
                    "score": prediction.score,
                }
                for rank, item in enumerate(prediction.labels[1:], start=2):
                    row[f"label_{rank}"], row[f"score_{rank}"] = item.label, item.score
                self._csv.writerow({name: _inert_cell(value) for name, value in row.items()})
            else:
                record = prediction.to_dict()
                if self._top_k == 1:
                    del record["labels"]
                self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"): =HYPERLINK(...) in a headline would be live in the user's Excel.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert_cell(value: object) -> object:
    """A text cell a spreadsheet shows as text: a leading ``'`` before a formula start."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class Progress:
    """A one-line progress report on stderr, redrawn at most a few times a second."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._total = total
        self._done = 0
        self._enabled = enabled
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, count: int) -> None:
        self._done += count
        now = time.monotonic()
        if self._enabled and (now - self._drawn >= 0.2 or self._done >= self._total):
            self._drawn = now
            rate = self._done / max(now - self._started, 1e-9)
            percent = 100.0 * self._done / max(self._total, 1)
            sys.stderr.write(
                f"\rclassified {self._done}/{self._total} ({percent:.0f}%), {rate:.1f} texts/s"
            )
            sys.stderr.flush()

    def finish(self) -> None:
        if self._enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _make_client(args: argparse.Namespace) -> BaseClient:
    retry = RetryPolicy(max_retries=max(args.retries, 0))
    if args.endpoint_name:
        return EndpointClient(
            args.endpoint_name,
            region=args.region,
            endpoint_url=args.endpoint_url,
            timeout=args.timeout,
            retry=retry,
            max_batch_size=args.batch_size,
        )
    url, path = (args.api_url, API_PATH) if args.api_url else (args.server_url, SERVER_PATH)
    return ApiClient(
        url,
        api_key=args.api_key if args.api_url else None,
        path=path,
        timeout=args.timeout,
        retry=retry,
        max_batch_size=args.batch_size,
    )


def _open_output(target: str) -> AbstractContextManager[TextIO]:
    if target == "-":
        # Leaving the block must not close the process's stdout.
        return nullcontext(sys.stdout)
    return Path(target).open("w", encoding="utf-8", newline="")


def _format_from_name(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "lines")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
