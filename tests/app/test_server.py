"""The real ``python -m app`` process (the image's ``serve``) on a free port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.settings import SAGEMAKER_SIGKILL_AFTER_S, Settings
from devtools.paths import REPO_ROOT
from devtools.processes import ServerProcess, offline_env, start_model_server, stop_model_server

SECRET = "zebra quartz nebula headline"


def opt_ml(tmp_path: Path, model_dir: Path) -> Path:
    base = tmp_path / "opt_ml"
    base.mkdir()
    (base / "model").symlink_to(model_dir, target_is_directory=True)
    return base


def test_the_shared_server_answers_the_sagemaker_contract(model_server: ServerProcess) -> None:
    assert httpx.get(f"{model_server.url}/ping").status_code == 200
    response = httpx.post(
        f"{model_server.url}/invocations",
        json={"inputs": ["Fed raises rates", "Apple unveils iPhone"]},
        headers={"X-Request-Id": "smoke-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "smoke-1"
    assert [set(item) for item in response.json()] == [{"label", "score"}] * 2


def test_logs_are_json_lines_without_the_callers_text(model_server: ServerProcess) -> None:
    response = httpx.post(
        f"{model_server.url}/invocations", json={"inputs": SECRET}, headers={"X-Request-Id": "r-9"}
    )
    assert response.status_code == 200
    time.sleep(0.2)
    log = model_server.log()
    assert "zebra" not in log
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [entry for entry in entries if entry.get("request_id") == "r-9"]
    assert len(mine) == 1
    assert mine[0]["status"] == 200
    assert mine[0]["inputs"] == 1
    assert {"duration_ms", "queue_wait_ms", "model_ms", "tokens"} <= set(mine[0])


@pytest.fixture(scope="module")
def one_by_one_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server that runs one text per model call, so big requests take a while.
    The SIGTERM test stops it, so it comes last in this module."""
    base = opt_ml(tmp_path_factory.mktemp("one_by_one"), tiny_model_dir)
    server = start_model_server(
        base,
        base / "server.log",
        SERVE_MAX_BATCH_SIZE="1",
        SERVE_QUEUE_SIZE="4096",
        SERVE_MAX_INSTANCES="2048",
    )
    yield server
    stop_model_server(server)


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_texts_of_a_client_that_went_away_are_not_run(one_by_one_server: ServerProcess) -> None:
    before = metric(one_by_one_server, "serving_texts_total")
    texts = [f"headline number {j} " * 4 for j in range(2000)]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{one_by_one_server.url}/invocations", json={"inputs": texts}, timeout=0.5)
    time.sleep(0.5)
    ran = metric(one_by_one_server, "serving_texts_total") - before
    time.sleep(0.5)
    assert metric(one_by_one_server, "serving_texts_total") - before == ran
    assert ran < len(texts)
    assert metric(one_by_one_server, "serving_queue_depth") == 0
    assert '"status":499' in one_by_one_server.log()


def test_sigterm_drains_queued_requests_then_exits_0(one_by_one_server: ServerProcess) -> None:
    server = one_by_one_server
    url = f"{server.url}/invocations"

    def post(i: int) -> httpx.Response:
        texts = [f"headline {i} number {j} " * 3 for j in range(200)]
        return httpx.post(url, json={"inputs": texts}, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        pending = [pool.submit(post, i) for i in range(6)]
        deadline = time.monotonic() + 20
        while metric(server, "serving_queue_depth") < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.process.send_signal(signal.SIGTERM)
        responses = [future.result() for future in pending]
    assert [response.status_code for response in responses] == [200] * 6
    assert all(len(response.json()) == 200 for response in responses)
    assert server.process.wait(timeout=30) == 0
    assert "queue drained" in server.log()


SHUTDOWN_TIMEOUT_S = 2


def test_sigterm_answers_what_cannot_finish_in_time_and_exits_within_the_window(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """SageMaker SIGKILLs 30 s after SIGTERM: the server must be gone by then, with every
    request answered. Here the window is SHUTDOWN_TIMEOUT_S and the queued work far longer:
    16 x 2000 texts one at a time, 20-90 s of work at 0.7-3 ms each. (About 15 s here, plus
    the server's start.)"""
    assert Settings().shutdown_timeout_s < SAGEMAKER_SIGKILL_AFTER_S
    server = start_model_server(
        opt_ml(tmp_path, tiny_model_dir),
        tmp_path / "server.log",
        SERVE_MAX_BATCH_SIZE="1",
        SERVE_QUEUE_SIZE="32000",
        SERVE_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S),
    )
    try:

        def post(i: int) -> httpx.Response:
            texts = [f"headline {i} number {j} " * 3 for j in range(2000)]
            return httpx.post(f"{server.url}/invocations", json={"inputs": texts}, timeout=120)

        with ThreadPoolExecutor(max_workers=16) as pool:
            pending = [pool.submit(post, i) for i in range(16)]
            deadline = time.monotonic() + 60
            while metric(server, "serving_queue_depth") < 24000 and time.monotonic() < deadline:
                time.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = server.process.wait(timeout=60)
            exited_after = time.monotonic() - signalled
            responses = [future.result() for future in pending]
    finally:
        stop_model_server(server)
    assert code == 0, server.log()[-3000:]
    assert exited_after < SHUTDOWN_TIMEOUT_S + 10, server.log()[-3000:]
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses, statuses  # the work did outlast the window
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "not_ready"
        else:
            assert len(response.json()) == 2000


def run_app(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=REPO_ROOT,
        env=offline_env(SAGEMAKER_BASE_DIR=str(tmp_path), SAGEMAKER_BIND_TO_PORT="1", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_artifact_means_exit_1_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    result = run_app(tmp_path)
    assert result.returncode == 1
    assert "artifact.json" in result.stdout


def test_invalid_settings_mean_exit_2(tmp_path: Path) -> None:
    result = run_app(tmp_path, SERVE_MAX_BATCH_SIZE="-1")
    assert result.returncode == 2
    assert "max_batch_size" in result.stdout
    result = run_app(tmp_path, SERVE_QUEUE_SIZE="8", SERVE_MAX_INSTANCES="16")
    assert result.returncode == 2
    assert "SERVE_MAX_INSTANCES" in result.stdout
