"""The evaluation gate: which status a candidate is registered with, or whether it is refused.

One rule, written twice from the same constants: :func:`decide` for the local pipeline, and
the SageMaker condition steps in :mod:`deploy.pipeline`, which read the same fields of
``evaluation.json`` (written by ``training.evaluate_candidate``) with ``JsonGet``.

- Worse than the TF-IDF baseline (macro-F1 difference below zero): refused, the pipeline
  fails with the evaluation report.
- Better than the baseline and than the approved model, with the lower end of every story
  bootstrap interval above zero, and auto-approval on: registered ``Approved``.
- Otherwise: registered ``PendingManualApproval`` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

# The fields of evaluation.json the gate reads (JsonGet paths).
BASELINE_DIFFERENCE = "gate.baseline_difference"
INTERVAL_LOW = "gate.interval_low"
DATA_SHA256 = "data.sha256"

Decision = Literal["Approved", "PendingManualApproval", "Rejected"]

APPROVED: Final = "Approved"
PENDING: Final = "PendingManualApproval"
REJECTED: Final = "Rejected"


@dataclass(frozen=True)
class GateResult:
    decision: Decision
    reason: str

    @property
    def registers(self) -> bool:
        return self.decision != REJECTED


def read_path(report: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``JsonGet`` path."""
    value: Any = report
    for part in path.split("."):
        value = value[part]
    return value


def decide(report: Mapping[str, Any], *, auto_approve: bool) -> GateResult:
    difference = float(read_path(report, BASELINE_DIFFERENCE))
    low = float(read_path(report, INTERVAL_LOW))
    if difference < 0:
        return GateResult(
            REJECTED, f"macro-F1 {difference:+.4f} against the TF-IDF baseline: worse than it"
        )
    if low <= 0:
        return GateResult(
            PENDING,
            f"the story-bootstrap interval's lower end is {low:+.4f}: not clearly better "
            "than the baseline and the approved model, so a person decides",
        )
    if not auto_approve:
        return GateResult(
            PENDING, f"better than both (interval low {low:+.4f}); auto-approval is off"
        )
    return GateResult(APPROVED, f"better than both (interval low {low:+.4f}); auto-approved")
