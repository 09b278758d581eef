"""The prepared-data format: one split per Parquet file, labels and provenance in its schema.

Prepared splits (``python -m training.prepare``) carry the label names, the format version and
the split's provenance (the run, method, seed and data summary) as JSON in the Parquet schema
metadata, so the mapping travels with the data and splits of two runs cannot be mixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.data.examples import CATEGORY_TO_LABEL, LABELS, Example
from training.errors import DataError

PREPARED_SUFFIX = ".parquet"
PREPARED_FORMAT_VERSION = 1
# Key of the JSON document in each Parquet file's schema metadata.
PREPARED_METADATA_KEY = b"news_classifier"
PREPARED_COLUMNS: tuple[str, ...] = ("text", "label", "story", "publisher")


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
