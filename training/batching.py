"""Token ids, length-grouped batches and dynamic padding: where most of the speed comes from.

Headlines average about 15 tokens (p99 about 26). Padding every batch to 128 tokens, the
default of transformers' text-classification example, makes most of the work padding;
batching similar lengths together and padding to the longest row (rounded up to a multiple of
8 for tensor cores) removes it. ``benchmarks/bench_training.py`` measures the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

PAD_TO_MULTIPLE_OF = 8
# Rows are sorted by length inside windows of this many batches: enough to group lengths,
# few enough that every batch is still a random draw from the whole split.
MEGABATCH_FACTOR = 50


@dataclass(frozen=True)
class EncodedSplit:
    """One split as token ids (unpadded) and class ids."""

    input_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def encode(
    texts: Sequence[str],
    label_ids: Sequence[int],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> EncodedSplit:
    """Tokenize once, up front: no padding here, batches pad themselves."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return EncodedSplit(input_ids=list(encoded["input_ids"]), labels=list(label_ids))


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    group_by_length: bool,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """This rank's batches (lists of row indices) for one epoch; the same for every call.

    The order depends only on ``(seed, epoch)``, so a resumed job can skip the batches it
    has already trained on and see exactly the ones an uninterrupted job would.
    """
    import torch

    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order: list[int] = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        window = batch_size * MEGABATCH_FACTOR
        order = [
            index
            for start in range(0, len(order), window)
            for index in sorted(order[start : start + window], key=lambda i: -lengths[i])
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        # Shuffle the batches too, or every window would run from long to short rows.
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in shuffled]
    # Every rank must take the same number of steps (DDP all-reduces each one).
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]


def collate(
    split: EncodedSplit,
    indices: Sequence[int],
    pad_token_id: int,
    *,
    pad_to: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pad rows to the longest one (rounded up to a multiple of 8), or to ``pad_to``."""
    import torch

    rows = [split.input_ids[i] for i in indices]
    longest = max(len(row) for row in rows)
    width = pad_to or -(-longest // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF
    input_ids = torch.tensor([row + [pad_token_id] * (width - len(row)) for row in rows])  # (B, T)
    attention_mask = torch.tensor(
        [[1] * len(row) + [0] * (width - len(row)) for row in rows]
    )  # (B, T)
    labels = torch.tensor([split.labels[i] for i in indices])  # (B,)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
