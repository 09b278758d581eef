"""The load test's pure parts: traffic mix, report reading, the gate, the plot, the CLI args."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from devtools.paths import SAMPLE_DATA
from loadtest.cli import parse_duration
from loadtest.gate import Thresholds, evaluate
from loadtest.plot import plot_history
from loadtest.report import RunTotals, by_user_count, percentile, read_history, read_totals
from loadtest.traffic import TrafficMix, check_response, error_summary, load_titles

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
    "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size"
)


def history_row(t: int, users: int, total: int, failures: int, p50: str, p95: str, p99: str) -> str:
    percentiles = [p50, p50, p50, p50, p95, p95, p99, p99, p99, p99, p99]
    return ",".join(
        [str(t), str(users), "", "Aggregated", "0", "0", *percentiles, str(total), str(failures)]
        + ["0"] * 5
    )


def test_titles_come_from_the_sample_without_csv_quoting() -> None:
    titles = load_titles(SAMPLE_DATA)
    assert len(titles) > 1000
    assert titles[0].startswith("Fed official says weak data")
    assert all("\t" not in title for title in titles)


def test_the_traffic_mix_follows_the_batch_ratio() -> None:
    titles = tuple(f"t{i}" for i in range(50))
    singles = TrafficMix(titles, batch_ratio=0.0, rng=random.Random(1))
    assert {len(singles.next_texts()) for _ in range(50)} == {1}
    batches = TrafficMix(titles, batch_ratio=1.0, batch_size=8, top_k=2, rng=random.Random(1))
    texts = batches.next_texts()
    assert len(texts) == 8 and set(texts) <= set(titles)
    assert json.loads(batches.body(texts)) == {"inputs": texts, "parameters": {"top_k": 2}}
    mixed = TrafficMix(titles, batch_ratio=0.3, rng=random.Random(7))
    share = sum(len(mixed.next_texts()) > 1 for _ in range(2000)) / 2000
    assert 0.25 < share < 0.35
    with pytest.raises(ValueError):
        TrafficMix(titles, batch_ratio=1.5)


def test_response_checks_and_failure_messages() -> None:
    assert check_response(b'[{"label": "b", "score": 1}]', 1) is None
    assert check_response(b"[]", 1) == "expected a list of 1 predictions"
    assert check_response(b"<html>", 1) == "response is not JSON"
    body = b'{"error": {"code": "overloaded", "message": "m", "request_id": "r"}}'
    assert error_summary(429, body) == "HTTP 429 overloaded"
    assert error_summary(0, None) == "HTTP 0"


def test_percentiles_follow_locusts_rule() -> None:
    # Values checked against locust.stats.calculate_response_time_percentile, which rounds up
    # at a boundary (95 of 100 at <= 20 ms still gives p95 = 100 ms): the gate agrees with
    # locust's own HTML report.
    histogram = Counter({10.0: 90, 20.0: 5, 100.0: 4, 500.0: 1})
    assert percentile(histogram, 0.5) == 10.0
    assert percentile(histogram, 0.95) == 100.0
    assert percentile(histogram, 0.99) == 500.0
    assert math.isnan(percentile(Counter(), 0.95))


def test_totals_from_locusts_json(tmp_path: Path) -> None:
    entry = {
        "num_requests": 90,
        "num_failures": 3,
        "response_times": {"8": 80, "12": 10},
        "start_time": 100.0,
        "last_request_timestamp": 110.0,
        "max_response_time": 12.4,
    }
    other = entry | {"num_requests": 10, "num_failures": 0, "response_times": {"40": 10}}
    path = tmp_path / "stats.json"
    path.write_text(json.dumps([entry, other]), encoding="utf-8")
    totals = read_totals(path)
    assert (totals.requests, totals.failures, totals.requests_per_s) == (100, 3, 10.0)
    assert (totals.p50_ms, totals.p95_ms, totals.p99_ms) == (8.0, 40.0, 40.0)
    assert totals.failure_rate == 0.03


def test_the_gate_passes_and_fails() -> None:
    totals = RunTotals(
        requests=200, failures=1, requests_per_s=20, p50_ms=8, p95_ms=30, p99_ms=90, max_ms=95
    )
    assert evaluate(totals, Thresholds(max_failure_rate=0.01, max_p95_ms=50, max_p99_ms=100)) == []
    problems = evaluate(totals, Thresholds(max_failure_rate=0.001, max_p95_ms=10, max_p99_ms=None))
    assert len(problems) == 2 and problems[0].startswith("failure rate")
    assert "p95 30 ms > 10 ms" in problems[1]
    empty = RunTotals(0, 0, 0.0, math.nan, math.nan, math.nan, math.nan)
    assert evaluate(empty, Thresholds(max_p95_ms=1000)) == [
        "only 0 requests (need 1)",
        "p95 nan ms > 1000 ms",
    ]


def test_history_by_user_count_and_plot(tmp_path: Path) -> None:
    rows = [history_row(0, 0, 0, 0, "N/A", "N/A", "N/A")]
    total = 0
    for second in range(1, 31):
        users = 2 if second <= 12 else 4
        total += 20 if users == 2 else 35
        rows.append(history_row(second, users, total, 0, "10", "20", "30" if users == 2 else "60"))
    path = tmp_path / "locust_stats_history.csv"
    path.write_text("\n".join([HISTORY_HEADER, *rows]) + "\n", encoding="utf-8")
    history = read_history(path)
    assert len(history) == 30 and history[0].requests_per_s == 20.0
    levels = by_user_count(history)
    assert [(lv.users, lv.requests_per_s, lv.p99_ms) for lv in levels] == [
        (2, 20.0, 30.0),
        (4, 35.0, 60.0),
    ]
    assert levels[1].seconds == 8  # seconds 23..30: the ones after the 10 s window settled
    png = plot_history(history, tmp_path / "plot.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("5m", 300), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    from loadtest.cli import main

    for argv in (
        ["--target", "server", "--out", str(tmp_path)],  # no --host
        ["--target", "endpoint", "--out", str(tmp_path)],  # no --endpoint-name
        ["--target", "server", "--host", "http://x", "--run-time", "0s", "--out", str(tmp_path)],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
