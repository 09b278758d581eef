"""Hostile requests against the real app, each bounded in size (a few MB at most) and time,
127.0.0.1 only: every one gets its 4xx (or 499 in the log), never a 500.

Throughput under floods, peak memory and /ping latency under saturation are measured by
``benchmarks/bench_abuse.py``, not asserted here (timed assertions flake on a busy machine).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from devtools.processes import ServerProcess, start_model_server, stop_model_server

SOCKET_TIMEOUT_S = 10.0


def test_a_megabyte_text_is_truncated_and_answered(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    text = "Fed raises interest rates again. " * 32_000  # about 1 MB, 1 text
    with caplog.at_level(logging.INFO, logger="app.requests"):
        response = client.post(
            "/invocations", json={"inputs": text}, headers={"X-Request-Id": "big-1"}
        )
    assert response.status_code == 200, response.text
    assert response.json() == client.post("/invocations", json={"inputs": text[:4000]}).json()
    (line,) = [r for r in caplog.records if getattr(r, "request_id", None) == "big-1"]
    assert line.truncated == 1  # type: ignore[attr-defined]


def test_a_csv_field_over_128_kib_is_400(client: TestClient) -> None:
    body = b'"' + b"word " * 40_000 + b'"\n'
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"


@pytest.fixture(scope="module")
def impatient_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server that gives clients 1 s to send a body."""
    base = tmp_path_factory.mktemp("opt_ml_abuse")
    (base / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    server = start_model_server(base, base / "server.log", SERVE_BODY_TIMEOUT_S="1")
    yield server
    stop_model_server(server)


def open_request(server: ServerProcess, request_id: str, declared_bytes: int) -> socket.socket:
    """A POST whose headers promise ``declared_bytes`` of body, of which 10 are sent."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    head = (
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Request-Id: {request_id}\r\nContent-Length: {declared_bytes}\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"inputs":')
    return sock


def log_line(server: ServerProcess, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in server.log().splitlines():
            if line.startswith("{") and f'"{request_id}"' in line:
                entry: dict[str, object] = json.loads(line)
                if entry.get("request_id") == request_id and "status" in entry:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_a_slow_body_is_408(impatient_server: ServerProcess) -> None:
    with open_request(impatient_server, "slow-1", 1000) as sock:
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < SOCKET_TIMEOUT_S
    assert log_line(impatient_server, "slow-1")["status"] == 408


def test_a_client_gone_mid_body_is_499_in_the_log_not_an_error(
    impatient_server: ServerProcess,
) -> None:
    open_request(impatient_server, "gone-1", 1000).close()
    entry = log_line(impatient_server, "gone-1")
    assert entry["status"] == 499
    assert "unexpected error" not in impatient_server.log()
    assert "Traceback" not in impatient_server.log()


def test_connections_beyond_the_concurrency_limit_get_uvicorns_503(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    base = tmp_path / "opt_ml"
    base.mkdir()
    (base / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    server = start_model_server(base, base / "server.log", SERVE_MAX_CONCURRENCY="3")
    host, port = server.url.removeprefix("http://").split(":")
    try:
        # Two idle connections and the probe's make 3: uvicorn refuses before the app runs.
        idle = [
            socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) for _ in range(2)
        ]
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/ping", timeout=SOCKET_TIMEOUT_S).status_code == 503
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/ping", timeout=SOCKET_TIMEOUT_S).status_code == 200
    finally:
        stop_model_server(server)
