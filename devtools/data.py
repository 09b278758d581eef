"""The development data as the benchmarks and the demo read it: the headlines of a UCI file."""

from __future__ import annotations

import lzma
from pathlib import Path

from devtools.paths import SAMPLE_DATA


def headlines(path: Path = SAMPLE_DATA) -> list[str]:
    """Column 2 of the tab-separated, unquoted UCI file (``.xz``), in file order; lines with
    fewer than 5 columns are skipped."""
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return [line.split("\t")[1] for line in handle if line.count("\t") >= 4]
