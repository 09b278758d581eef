"""De-duplication and the story-grouped, label-stratified split, with the one rule for its options.

Splits are grouped by STORY (rows of one story are paraphrases of one event, so a random row
split leaks near-duplicates into the test set), stratified by each story's majority label and
deterministic for a seed. Titles are de-duplicated on a normalized form before splitting, so an
identical title can neither repeat within a split nor appear in two splits.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from training.data.examples import LABELS, SPLIT_NAMES, Example, SplitMethod, Splits
from training.errors import DataError, HyperparameterError

# More than this share of the rows stays for training. One rule for the job's hyperparameters
# and for every other caller (training.prepare, the library), the job's stricter one: a split
# that leaves a tenth of the data or less to train on is a mistake in the options (say,
# validation_fraction=0.8 meant as the training share), not a plan, and the story-stratified
# split needs enough groups of every label in train to give each label its share.
MIN_TRAIN_FRACTION = 0.1


def check_split_options(
    validation_fraction: float,
    test_fraction: float,
    split: str = "story",
    max_bad_fraction: float = 0.0,
) -> None:
    """Raise :class:`HyperparameterError` unless the split options make a usable split."""
    if split not in ("story", "random"):
        raise HyperparameterError(f"split must be 'story' or 'random', not {split!r}")
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1):
        raise HyperparameterError(
            "validation_fraction and test_fraction must each be between 0 and 1 (exclusive), "
            f"got {validation_fraction:g} and {test_fraction:g}"
        )
    if validation_fraction + test_fraction >= 1 - MIN_TRAIN_FRACTION:
        raise HyperparameterError(
            "validation_fraction + test_fraction must leave more than "
            f"{MIN_TRAIN_FRACTION:.0%} of the rows for training (sum below "
            f"{1 - MIN_TRAIN_FRACTION:g}), got {validation_fraction + test_fraction:g}"
        )
    if not 0 <= max_bad_fraction <= 1:
        raise HyperparameterError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction:g}")


def normalize_title(title: str) -> str:
    """The form under which two titles count as the same: NFKC, case-folded, single-spaced."""
    # NFKC changes nothing in ASCII, and it is the slow part (docs/data.md, "Benchmarks").
    if not title.isascii():
        title = unicodedata.normalize("NFKC", title)
    return " ".join(title.casefold().split())


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int, int]:
    """Keep the first example of each normalized title.

    Returns the kept examples (in input order), how many were removed, and how many of the
    removed ones carried a different label from the kept one.
    """
    kept: list[Example] = []
    label_of: dict[str, str] = {}
    removed = conflicts = 0
    for example in examples:
        key = normalize_title(example.text)
        first_label = label_of.get(key)
        if first_label is None:
            label_of[key] = example.label
            kept.append(example)
            continue
        removed += 1
        if first_label != example.label:
            conflicts += 1
    return kept, removed, conflicts


def split_examples(
    examples: Sequence[Example],
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    method: SplitMethod = "story",
) -> Splits:
    """Split de-duplicated examples into train/validation/test, grouped and stratified.

    With ``method="story"`` every STORY lands in exactly one split (an example without a story
    is a group of its own); with ``"random"`` every example is its own group. Groups are
    stratified by their majority label: per label, groups are shuffled by ``seed`` and laid
    end to end, and a group goes to the split in which its middle row falls (test first, then
    validation, then train), so each split gets its share of every label up to one group.
    """
    check_split_options(validation_fraction, test_fraction, method)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        key = example.story if method == "story" and example.story else f"\x00row{index}"
        groups[key].append(index)

    by_label: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        label_counts = Counter(examples[i].label for i in groups[key])
        majority = max(LABELS, key=lambda label: label_counts.get(label, 0))
        by_label[majority].append(key)

    rng = random.Random(seed)
    assigned: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for label in LABELS:
        keys = by_label.get(label, [])
        rng.shuffle(keys)
        total = sum(len(groups[key]) for key in keys)
        test_end = total * test_fraction
        validation_end = test_end + total * validation_fraction
        position = 0.0
        for key in keys:
            size = len(groups[key])
            middle = position + size / 2
            if middle < test_end:
                target = "test"
            elif middle < validation_end:
                target = "validation"
            else:
                target = "train"
            assigned[target].extend(groups[key])
            position += size

    parts = {name: [examples[i] for i in sorted(indices)] for name, indices in assigned.items()}
    empty = [name for name, items in parts.items() if not items]
    if empty:
        raise DataError(
            f"{len(examples):,} examples in {len(groups):,} groups are too few to fill the "
            f"{'/'.join(empty)} split(s) with validation_fraction={validation_fraction:g} and "
            f"test_fraction={test_fraction:g}: give more data or larger fractions."
        )
    return Splits(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        method=method,
        seed=seed,
    )
