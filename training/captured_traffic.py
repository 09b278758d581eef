"""Reading SageMaker data-capture files: the texts and top predictions of live traffic.

Data capture writes JSON Lines, one record per request, with the request and response
bodies as JSON text or base64 (see deploy/capture.py), under a local folder or an ``s3://``
prefix. A record that cannot be read is counted, never fatal; the number of files and
records read is bounded before work starts.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import JobError

logger = logging.getLogger(__name__)

# Captured files to read at most, and records per file: the cost is bounded before work starts.
MAX_FILES = 10_000
MAX_RECORDS = 2_000_000


@dataclass
class Traffic:
    """The texts and top predictions read from the captured records."""

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    records: int = 0
    unreadable: int = 0  # records whose bodies could not be decoded or paired


def _decode_body(part: Mapping[str, Any]) -> tuple[str, str]:
    """(media type, text) of a captured ``endpointInput``/``endpointOutput``."""
    data = str(part.get("data", ""))
    if str(part.get("encoding", "")).upper() == "BASE64":
        data = base64.b64decode(data, validate=True).decode("utf-8")
    media = str(part.get("observedContentType", "")).split(";")[0].strip().lower()
    return media, data


def _input_texts(media: str, body: str) -> list[str]:
    """The texts of a request body in the model server's formats (app/codecs.py)."""
    if media in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        texts = []
        for line in body.splitlines():
            if line.strip():
                item = json.loads(line)
                texts.append(str(item["inputs"] if isinstance(item, dict) else item))
        return texts
    if media == "text/csv":
        return [row[0] for row in csv.reader(io.StringIO(body)) if row]
    if media == "text/plain":
        return [body]
    inputs = json.loads(body)["inputs"]  # application/json, and what an unset type means
    return [str(inputs)] if isinstance(inputs, str) else [str(text) for text in inputs]


def _top(prediction: Any) -> tuple[str, float]:
    best = prediction[0] if isinstance(prediction, list) else prediction  # top_k > 1: ranked
    return str(best["label"]), float(best["score"])


def _output_predictions(media: str, body: str) -> list[tuple[str, float]]:
    if media in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        return [_top(json.loads(line)) for line in body.splitlines() if line.strip()]
    if media == "text/csv":
        return [(row[0], float(row[1])) for row in csv.reader(io.StringIO(body)) if row]
    answer = json.loads(body)
    return [_top(item) for item in (answer if isinstance(answer, list) else [answer])]


def read_traffic(lines: Iterable[str]) -> Traffic:
    """Parse captured JSON Lines; a record that cannot be read is counted, not fatal."""
    traffic = Traffic()
    for line in lines:
        if not line.strip():
            continue
        traffic.records += 1
        if traffic.records > MAX_RECORDS:
            raise JobError(f"more than {MAX_RECORDS:,} captured records; pass a narrower prefix")
        try:
            captured = json.loads(line)["captureData"]
            texts = _input_texts(*_decode_body(captured["endpointInput"]))
            predictions = _output_predictions(*_decode_body(captured["endpointOutput"]))
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error) as exc:
            logger.debug("unreadable captured record: %s", exc)
            traffic.unreadable += 1
            continue
        if len(texts) != len(predictions):
            traffic.unreadable += 1
            continue
        traffic.texts += texts
        traffic.labels += [label for label, _ in predictions]
        traffic.scores += [score for _, score in predictions]
    return traffic


def captured_lines(source: str) -> Iterator[str]:
    """Every line of the captured ``.jsonl`` files under a folder or an ``s3://`` prefix."""
    if source.startswith("s3://"):
        yield from _s3_lines(source)
        return
    root = Path(source)
    files = sorted(root.rglob("*.jsonl")) if root.is_dir() else [root]
    if not files or not files[0].is_file():
        raise JobError(f"{source}: no captured .jsonl files")
    if len(files) > MAX_FILES:
        raise JobError(f"{source}: more than {MAX_FILES:,} files; pass a narrower folder")
    for path in files:
        with path.open(encoding="utf-8") as handle:
            yield from handle


def _s3_lines(uri: str) -> Iterator[str]:
    try:
        import boto3
    except ImportError as exc:
        raise JobError("reading s3:// needs boto3 (pip install news-classifier[aws])") from exc
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].endswith(".jsonl")
    ]
    if not keys:
        raise JobError(f"{uri}: no captured .jsonl objects")
    if len(keys) > MAX_FILES:
        raise JobError(f"{uri}: more than {MAX_FILES:,} objects; pass a narrower prefix")
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        yield from body.splitlines()
