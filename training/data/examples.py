"""The example types and the label set: what every other data module produces or consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LABELS: tuple[str, ...] = ("business", "entertainment", "health", "science_and_technology")
# UCI's CATEGORY column (b/e/m/t) -> our label names.
CATEGORY_TO_LABEL: dict[str, str] = {
    "b": "business",
    "e": "entertainment",
    "m": "health",
    "t": "science_and_technology",
}
SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")

SplitMethod = Literal["story", "random"]


@dataclass(frozen=True, slots=True)
class Example:
    """One headline with its label; ``story`` and ``publisher`` are "" when unknown."""

    text: str
    label: str
    story: str = ""
    publisher: str = ""


@dataclass(frozen=True)
class Splits:
    """The three splits and how they were made."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
    method: str
    seed: int
    labels: tuple[str, ...] = LABELS

    def by_name(self) -> dict[str, list[Example]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


@dataclass(frozen=True)
class DataSummary:
    """Provenance and data-quality figures that go into reports and the model's metadata."""

    sources: dict[str, str]
    rows: dict[str, int]
    bad_lines: dict[str, int]
    # Input lines read (raw input) or rows read (prepared input).
    lines_read: int = 0
    # Rows dropped because their normalized title repeats an earlier row's.
    duplicates_removed: int = 0
    # Of those, rows whose label differed from the kept row's label.
    duplicate_label_conflicts: int = 0
    # Kind of malformed line -> the first offending line numbers (1-based).
    bad_line_examples: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
