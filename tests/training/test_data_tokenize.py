"""Chunk-wise tokenization gives exactly the ids of the transformers tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devtools.artifacts import minilm_dir
from tests.training.tricky_titles import TRICKY
from training.chunk_tokenize import encode_titles
from training.data import load_datasets


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)


@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_ids_match_the_tokenizer(tokenizer: Any, sample_data: Path, max_length: int) -> None:
    splits, _ = load_datasets({"train": sample_data})
    texts = [*TRICKY, *(e.text for e in splits.train[:1000])]
    expected = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert encode_titles(texts, tokenizer, max_length) == expected


def test_other_tokenizers_fall_back_to_the_tokenizer_itself() -> None:
    class SlowTokenizer:  # no backend_tokenizer: not a transformers fast tokenizer
        def __call__(
            self, texts: list[str], truncation: bool, max_length: int
        ) -> dict[str, list[list[int]]]:
            return {"input_ids": [[len(t)] for t in texts]}

    assert encode_titles(["ab", "abc"], SlowTokenizer(), 16) == [[2], [3]]
