"""``python -m loadtest`` end to end: a short headless locust run against the real model server.

``main`` runs locust in a child process (locust monkey-patches the standard library with gevent
on import), so nothing of locust is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_api import DEFAULT_ENDPOINT_NAME, LocalApi, start_local_api
from devtools.processes import ServerProcess
from loadtest.cli import EXIT_FAILED, EXIT_PASSED, main

# Few users, no think time, and a request cap: a few seconds of work at most.
SHORT_RUN = [
    "--users", "2",
    "--spawn-rate", "10",
    "--run-time", "6s",
    "--think-min", "0",
    "--think-max", "0.02",
    "--batch-ratio", "0.3",
    "--batch-size", "4",
]  # fmt: skip
REPORTS = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_stats.json",
    "report.html",
    "loadtest.png",
    "summary.json",
)


def test_a_lenient_gate_passes_and_writes_the_reports(
    model_server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "server"
    argv = ["--target", "server", "--host", model_server.url, "--out", str(out), *SHORT_RUN]
    gate = ["--max-requests", "60", "--max-failure-rate", "0", "--max-p95-ms", "30000"]
    assert main([*argv, *gate]) == EXIT_PASSED, (out / "locust.log").read_text()
    for name in REPORTS:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True
    assert 60 <= summary["totals"]["requests"] <= 70  # stopped at the cap (plus in-flight ones)
    assert summary["totals"]["failures"] == 0
    stats = (out / "locust_stats.csv").read_text()
    assert "/invocations [single]" in stats and "/invocations [batch]" in stats
    assert (out / "loadtest.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def local_api(model_server: ServerProcess) -> Iterator[LocalApi]:
    with start_local_api(model_server.url) as api:
        yield api


def test_an_impossible_gate_fails_the_endpoint_run(
    local_api: LocalApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SageMaker way in, through the local InvokeEndpoint stand-in, with the step shape.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    out = tmp_path / "endpoint"
    argv = [
        "--target", "endpoint",
        "--host", local_api.url,
        "--endpoint-name", DEFAULT_ENDPOINT_NAME,
        "--region", "us-east-1",
        "--out", str(out),
        *SHORT_RUN,
        "--step-load", "--step-users", "1", "--step-time", "1s",
        "--max-requests", "40",
        "--max-p95-ms", "0.001",
    ]  # fmt: skip
    assert main(argv) == EXIT_FAILED, (out / "locust.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False
    assert any(problem.startswith("p95") for problem in summary["problems"])
    # The shape may end the run (2 users held for a step) before the request cap.
    assert summary["totals"]["requests"] > 0 and summary["totals"]["failures"] == 0
    # Every call went through the custom client's events.request, under the endpoint's name.
    entries = json.loads((out / "locust_stats.json").read_text())
    assert {(e["method"], e["name"]) for e in entries} <= {
        ("InvokeEndpoint", f"{DEFAULT_ENDPOINT_NAME} [single]"),
        ("InvokeEndpoint", f"{DEFAULT_ENDPOINT_NAME} [batch]"),
    }


def test_the_api_user_through_the_local_api_gateway(local_api: LocalApi, tmp_path: Path) -> None:
    out = tmp_path / "api"
    argv = ["--target", "api", "--host", local_api.url, "--api-key", "local-key", "--out", str(out)]
    assert main([*argv, *SHORT_RUN, "--max-requests", "20"]) == EXIT_PASSED
    entries = json.loads((out / "locust_stats.json").read_text())
    assert {e["name"] for e in entries} <= {"/classify [single]", "/classify [batch]"}
    assert sum(e["num_requests"] for e in entries) >= 20
