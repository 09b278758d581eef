"""Splitting a large input into requests under the service's count and payload limits."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

# The request around the texts: {"inputs":[...],"parameters":{"top_k":NNN}}.
_ENVELOPE_BYTES = 64


def encoded_size(text: str) -> int:
    """Bytes ``text`` adds to a request body: its JSON string plus a separating comma."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 1


def chunk_texts(texts: Sequence[str], *, max_count: int, max_bytes: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of ``texts`` of at most ``max_count`` texts and ``max_bytes`` of body.

    A single text larger than ``max_bytes`` still goes alone in its own request: the server is
    the authority on its limits and answers 413 with its own message.
    """
    if max_count < 1 or max_bytes < 1:
        raise ValueError("max_count and max_bytes must be positive")
    start, size = 0, _ENVELOPE_BYTES
    for index, text in enumerate(texts):
        text_size = encoded_size(text)
        count = index - start
        if count and (count >= max_count or size + text_size > max_bytes):
            yield texts[start:index]
            start, size = index, _ENVELOPE_BYTES
        size += text_size
    if start < len(texts):
        yield texts[start:]
