"""Tokenize many headlines fast by tokenizing each distinct space-separated chunk once.

For the BERT family (BERT, DistilBERT, MiniLM: a character-wise ``BertNormalizer`` and a
``BertPreTokenizer`` that splits on every space), the tokens of a title are exactly the
concatenation of the tokens of its space-separated chunks. Headlines reuse their words, so
a corpus holds far fewer distinct chunks than titles: tokenizing chunks instead of titles
does a fraction of the tokenizer's work, and the tokenizer's per-title overhead (offsets,
alignments, Python objects) disappears (figures: docs/data.md, "Benchmarks"). The ids are
identical to ``tokenizer(texts, truncation=True, max_length=...)["input_ids"]``, which
:func:`encode_titles` falls back to for any other tokenizer.

Two uses: :func:`encode_titles` (ids, for training) and :func:`count_tokens` /
:func:`count_tokens_with` (lengths with special tokens and nothing truncated, for the EDA
report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import JobError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Chunks per call into the Rust tokenizer.
CHUNK_BATCH = 16_384
# Titles per tokenizer call where chunking does not apply: large enough for the Rust
# tokenizer's threads, small enough for a progress bar that moves.
TOKENIZE_BATCH = 8_192


def supports_chunking(backend: Tokenizer) -> bool:
    """Whether titles may be tokenized chunk by chunk with identical results."""
    if type(backend.normalizer).__name__ not in ("BertNormalizer", "NoneType"):
        return False
    if type(backend.pre_tokenizer).__name__ != "BertPreTokenizer":
        return False
    # The special tokens must wrap the text as [CLS] ... [SEP]; check it on a sample title.
    prefix, suffix = special_wrapping(backend)
    probe = "Fed holds rates steady"
    expected = backend.encode(probe).ids
    plain = backend.encode(probe, add_special_tokens=False).ids
    return expected == [*prefix, *plain, *suffix]


def special_wrapping(backend: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the post-processor puts before and after a single text (BERT: [CLS], [SEP])."""
    empty = backend.encode("").ids
    cut = 1 if empty else 0
    return empty[:cut], empty[cut:]


def chunk_token_ids(
    texts: Sequence[str], backend: Tokenizer, *, progress: bool = False
) -> dict[str, list[int]]:
    """Token ids (no special tokens) of every distinct space-separated chunk of ``texts``."""
    from tqdm import tqdm

    chunks = sorted({chunk for text in texts for chunk in text.split(" ")})
    ids: dict[str, list[int]] = {}
    with tqdm(total=len(chunks), desc="tokenizing", unit=" words", disable=not progress) as bar:
        for start in range(0, len(chunks), CHUNK_BATCH):
            batch = chunks[start : start + CHUNK_BATCH]
            encodings = backend.encode_batch(batch, add_special_tokens=False)
            ids.update(zip(batch, (encoding.ids for encoding in encodings), strict=True))
            bar.update(len(batch))
    return ids


def encode_titles(
    texts: Sequence[str], tokenizer: Any, max_length: int, *, progress: bool = False
) -> list[list[int]]:
    """``tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]``, faster.

    ``tokenizer`` is a transformers fast tokenizer; anything that is not of the BERT family
    (or not fast) is simply called as above.
    """
    backend = _plain_backend(tokenizer)
    if backend is None or not supports_chunking(backend):
        return list(tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"])
    prefix, suffix = special_wrapping(backend)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 0:
        raise ValueError(f"max_length {max_length} leaves no room for the special tokens")
    lookup = chunk_token_ids(texts, backend, progress=progress)
    encoded = []
    for text in texts:
        ids: list[int] = []
        for chunk in text.split(" "):
            ids += lookup[chunk]
        encoded.append([*prefix, *ids[:budget], *suffix])
    return encoded


def _plain_backend(tokenizer: Any) -> Tokenizer | None:
    """A copy of the fast tokenizer's Rust backend without padding or truncation settings."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    # A copy: tokenizer.json may carry padding/truncation, and the original stays untouched.
    plain = Tokenizer.from_str(backend.to_str())
    plain.no_padding()
    plain.no_truncation()
    return plain


# --- token counts (the EDA report's lengths) ------------------------------------------------


def count_tokens_with(texts: Sequence[str], tokenizer: Any, *, progress: bool = False) -> list[int]:
    """Tokens per text for a loaded ``transformers`` tokenizer (the base model's own)."""
    backend = _plain_backend(tokenizer)  # a copy: the caller's keeps its settings
    if backend is not None:
        return _count_with_backend(texts, backend, progress)
    return _count_in_batches(
        texts,
        lambda batch: [len(ids) for ids in tokenizer(batch, truncation=False)["input_ids"]],
        progress,
    )


def count_tokens(
    texts: Sequence[str], tokenizer_path: Path, *, progress: bool = False
) -> list[int]:
    """Tokens per text, special tokens included and nothing truncated.

    Uses the ``tokenizers`` library directly when the directory holds a ``tokenizer.json``
    (fast, and no transformers import); otherwise the directory's transformers tokenizer.
    """
    tokenizer_file = tokenizer_path / "tokenizer.json"
    if tokenizer_file.is_file():
        from tokenizers import Tokenizer

        try:
            fast = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a plain Exception for a bad file
            raise JobError(f"cannot load the tokenizer {tokenizer_file}: {exc}") from exc
        fast.no_truncation()
        fast.no_padding()
        return _count_with_backend(texts, fast, progress)

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot load a tokenizer from {tokenizer_path}: {exc}") from exc
    return _count_in_batches(
        texts,
        lambda batch: [len(ids) for ids in tokenizer(batch, truncation=False)["input_ids"]],
        progress,
    )


def _count_with_backend(texts: Sequence[str], fast: Tokenizer, progress: bool) -> list[int]:
    """Counts from a Rust tokenizer without truncation or padding: by chunks where exact."""
    if supports_chunking(fast):
        return _count_by_chunks(texts, fast, progress=progress)
    return _count_in_batches(
        texts, lambda batch: [len(e.ids) for e in fast.encode_batch(batch)], progress
    )


def _count_by_chunks(texts: Sequence[str], fast: Tokenizer, *, progress: bool) -> list[int]:
    """Tokenize each distinct space-separated chunk once and add up per title (same counts)."""
    lengths = {
        chunk: len(ids) for chunk, ids in chunk_token_ids(texts, fast, progress=progress).items()
    }
    prefix, suffix = special_wrapping(fast)
    specials = len(prefix) + len(suffix)
    return [specials + sum(map(lengths.__getitem__, text.split(" "))) for text in texts]


def _count_in_batches(
    texts: Sequence[str], count_batch: Callable[[list[str]], list[int]], progress: bool
) -> list[int]:
    from tqdm import tqdm

    counts: list[int] = []
    with tqdm(total=len(texts), desc="tokenizing", unit=" texts", disable=not progress) as bar:
        for start in range(0, len(texts), TOKENIZE_BATCH):
            batch = list(texts[start : start + TOKENIZE_BATCH])
            counts.extend(count_batch(batch))
            bar.update(len(batch))
    return counts
