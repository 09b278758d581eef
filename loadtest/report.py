"""Reading locust's CSV reports: the run's totals and its history by number of users."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, median

AGGREGATED = "Aggregated"
# locust's history percentiles are windowed over the last ~10 s (with --csv-full-history); rows
# less than this long after a change of user count still mix in the previous level's latency.
SETTLE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class RunTotals:
    """The whole run: every request of every name."""

    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One ``Aggregated`` row of ``<prefix>_stats_history.csv`` (one per second of the run)."""

    timestamp: int
    users: int
    requests_per_s: float
    failures_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class UserLevel:
    """Throughput (mean) and latency (median) at one number of users, over its settled seconds."""

    users: int
    seconds: int
    requests_per_s: float
    failures_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def read_totals(stats_json: Path) -> RunTotals:
    """The run's totals from locust's ``--json-file`` report, written once at shutdown.

    The JSON rather than ``<prefix>_stats.csv``: the CSV is rewritten once a second and misses
    up to the last second of the run, the JSON holds every request's (rounded) response time.
    """
    entries = json.loads(stats_json.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{stats_json} is not a list of locust stats entries")
    requests = sum(int(entry["num_requests"]) for entry in entries)
    failures = sum(int(entry["num_failures"]) for entry in entries)
    histogram: Counter[float] = Counter()
    for entry in entries:
        for millis, count in entry["response_times"].items():
            histogram[float(millis)] += int(count)
    started = min((float(entry["start_time"]) for entry in entries), default=0.0)
    ended = max((float(entry["last_request_timestamp"] or 0) for entry in entries), default=0.0)
    return RunTotals(
        requests=requests,
        failures=failures,
        requests_per_s=requests / (ended - started) if ended > started else 0.0,
        p50_ms=percentile(histogram, 0.50),
        p95_ms=percentile(histogram, 0.95),
        p99_ms=percentile(histogram, 0.99),
        max_ms=max((float(entry["max_response_time"]) for entry in entries), default=math.nan),
    )


def percentile(histogram: Counter[float], fraction: float) -> float:
    """The response time that ``fraction`` of the requests did not exceed (as locust computes).

    NaN when there were no requests, so no latency limit can pass on an empty run.
    """
    total = sum(histogram.values())
    if not total:
        return math.nan
    # Walk down from the slowest: the first time at which at most (1 - fraction) of requests
    # were slower is the percentile; the same rule as locust's own report.
    allowed_slower = int(total * fraction)
    seen = 0
    for millis in sorted(histogram, reverse=True):
        seen += histogram[millis]
        if total - seen <= allowed_slower:
            return millis
    return min(histogram)


def read_history(history_csv: Path) -> list[HistoryRow]:
    """One row per second of the run (the ``Aggregated`` rows), from its first request on.

    Throughput is recomputed from the running request count: locust's own ``Requests/s``
    column lags by a few seconds, which hides short runs and sudden changes.
    """
    rows: list[HistoryRow] = []
    previous: tuple[int, int, int] | None = None  # (timestamp, requests, failures)
    with history_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != AGGREGATED:
                continue
            timestamp = int(row["Timestamp"])
            requests, failures = int(row["Total Request Count"]), int(row["Total Failure Count"])
            if previous is not None and requests > 0 and timestamp > previous[0]:
                elapsed = timestamp - previous[0]
                rows.append(
                    HistoryRow(
                        timestamp=timestamp,
                        users=int(row["User Count"]),
                        requests_per_s=(requests - previous[1]) / elapsed,
                        failures_per_s=(failures - previous[2]) / elapsed,
                        p50_ms=_latency(row["50%"]),
                        p95_ms=_latency(row["95%"]),
                        p99_ms=_latency(row["99%"]),
                    )
                )
            previous = (timestamp, requests, failures)
    return rows


def by_user_count(history: list[HistoryRow]) -> list[UserLevel]:
    """Aggregate the history per number of users, preferring the seconds after it settled."""
    runs: dict[int, list[HistoryRow]] = defaultdict(list)
    settled: dict[int, list[HistoryRow]] = defaultdict(list)
    level_since: tuple[int, int] | None = None  # (users, first timestamp at that count)
    for row in history:
        if level_since is None or level_since[0] != row.users:
            level_since = (row.users, row.timestamp)
        runs[row.users].append(row)
        if row.timestamp - level_since[1] >= SETTLE_SECONDS:
            settled[row.users].append(row)
    levels = []
    for users in sorted(runs):
        rows = settled.get(users) or runs[users]
        levels.append(
            UserLevel(
                users=users,
                seconds=len(rows),
                requests_per_s=fmean(r.requests_per_s for r in rows),
                failures_per_s=fmean(r.failures_per_s for r in rows),
                p50_ms=_median(r.p50_ms for r in rows),
                p95_ms=_median(r.p95_ms for r in rows),
                p99_ms=_median(r.p99_ms for r in rows),
            )
        )
    return levels


def _median(values: Iterable[float]) -> float:
    known = [value for value in values if not math.isnan(value)]
    return median(known) if known else math.nan


def _latency(value: str | None) -> float:
    # A windowed percentile of 0 means "no samples in the window yet", not a 0 ms request.
    number = _number(value)
    return math.nan if number == 0 else number


def _number(value: str | None) -> float:
    if value is None or value in ("", "N/A"):
        return math.nan
    return float(value)
