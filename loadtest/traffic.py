"""Realistic request bodies: headlines from the dataset sample, single texts mixed with batches.

Plain Python (no locust import), so the mix can be tested and reused outside a locust process.
"""

from __future__ import annotations

import functools
import json
import lzma
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

# The committed sample: tab-separated, no header, no quoting; column 2 (index 1) is the title.
DEFAULT_TITLES = (
    Path(__file__).resolve().parent.parent / "data" / "sample" / "newsCorpora.sample.csv.xz"
)
_TITLE_COLUMN = 1


@functools.cache
def load_titles(path: Path = DEFAULT_TITLES) -> tuple[str, ...]:
    """Headlines from a newsCorpora-format file (``.xz`` or plain), or a file of one per line."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        titles = tuple(_read_titles(handle))
    if not titles:
        raise ValueError(f"no titles in {path}")
    return titles


def _read_titles(handle: TextIO) -> list[str]:
    titles = []
    for line in handle:
        # The dataset has no quoting at all, so csv.reader would mangle titles with quotes.
        fields = line.rstrip("\n").split("\t")
        title = fields[_TITLE_COLUMN] if len(fields) > _TITLE_COLUMN else fields[0]
        if title.strip():
            titles.append(title.strip())
    return titles


@dataclass
class TrafficMix:
    """Draws the next request: one title, or with probability ``batch_ratio`` a batch of them."""

    titles: tuple[str, ...]
    batch_ratio: float = 0.2
    batch_size: int = 8
    top_k: int = 1
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not self.titles:
            raise ValueError("no titles to send")
        if not 0.0 <= self.batch_ratio <= 1.0:
            raise ValueError("batch_ratio must be within [0, 1]")
        if self.batch_size < 1 or self.top_k < 1:
            raise ValueError("batch_size and top_k must be at least 1")

    def next_texts(self) -> list[str]:
        batched = self.batch_size > 1 and self.rng.random() < self.batch_ratio
        return self.rng.sample(
            self.titles, k=min(self.batch_size if batched else 1, len(self.titles))
        )

    def body(self, texts: list[str]) -> str:
        """The request body of the HTTP API for ``texts`` (ASCII JSON: safe to send as str)."""
        return json.dumps({"inputs": texts, "parameters": {"top_k": self.top_k}})


def check_response(body: bytes, expected: int) -> str | None:
    """None when ``body`` is one prediction per input, else why not (a short, stable message)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return "response is not JSON"
    if not isinstance(payload, list) or len(payload) != expected:
        return f"expected a list of {expected} predictions"
    return None


def error_summary(status: int, body: bytes | None) -> str:
    """A failure message that groups well in locust's failure table: status and error code."""
    code = None
    try:
        payload = json.loads(body or b"")
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            code = payload["error"].get("code")
    except ValueError:
        pass
    return f"HTTP {status} {code}" if isinstance(code, str) else f"HTTP {status}"
