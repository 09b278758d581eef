"""The deployment gate: a run passes when its failure rate and tail latency are under limits."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadtest.report import RunTotals


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits for a run; None switches a check off."""

    max_failure_rate: float | None = 0.01
    max_p95_ms: float | None = None
    max_p99_ms: float | None = None
    # A run that sent (almost) nothing measured nothing: it must not pass by default.
    min_requests: int = 1


def evaluate(totals: RunTotals, thresholds: Thresholds) -> list[str]:
    """The reasons the run fails the gate; an empty list means it passes."""
    problems = []
    if totals.requests < thresholds.min_requests:
        problems.append(f"only {totals.requests} requests (need {thresholds.min_requests})")
    if (
        thresholds.max_failure_rate is not None
        and totals.failure_rate > thresholds.max_failure_rate
    ):
        problems.append(
            f"failure rate {totals.failure_rate:.4f} > {thresholds.max_failure_rate:.4f} "
            f"({totals.failures} of {totals.requests})"
        )
    for name, value, limit in (
        ("p95", totals.p95_ms, thresholds.max_p95_ms),
        ("p99", totals.p99_ms, thresholds.max_p99_ms),
    ):
        if limit is not None and (math.isnan(value) or value > limit):
            problems.append(f"{name} {value:.0f} ms > {limit:.0f} ms")
    return problems
